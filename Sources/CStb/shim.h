// stb_image from libstb-dev (Debian builds it into libstb.so; this header only declares it).
#include <stb/stb_image.h>
