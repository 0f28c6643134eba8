// libjpeg-turbo's TurboJPEG API from libturbojpeg0-dev: errors come back as return codes (plain
// libjpeg exits the process on a corrupt file), and its decoder defaults — accurate integer IDCT,
// fancy upsampling — are the ones Pillow decodes with.
#include <turbojpeg.h>
