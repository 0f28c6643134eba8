// stb_image from libstb-dev (Debian builds it into libstb.so; this header only declares it).
// Used for PNG only, where its decode equals Pillow's bit for bit; JPEG goes through CTurboJPEG.
#include <stb/stb_image.h>
