// JPEG (libjpeg-turbo's TurboJPEG API), PNG (libpng's simplified API) and gzip (zlib) decoding.
#include <turbojpeg.h>
#include <png.h>
#include <zlib.h>
