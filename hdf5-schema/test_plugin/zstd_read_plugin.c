/* SPDX-License-Identifier: Apache-2.0
 * A minimal HDF5 filter plugin for id 32015 (zstd), decompression only, in the format of the
 * community HDF5Plugin-Zstandard (one zstd frame with the content size in its header). Debian 12
 * packages no zstd plugin, so the h5dump test (image_shuffle_test.cpp) loads this one through
 * HDF5_PLUGIN_PATH: it proves that a stock h5dump, with a stock-format zstd plugin and HDF5's
 * built-in shuffle, reads the values of every kind of chunk ferry writes. Not installed. */
#include <stdlib.h>

#include <hdf5.h>
#include <H5PLextern.h>
#include <zstd.h>

static size_t zstd_read_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                               size_t* buf_size, void** buf) {
  (void)cd_nelmts;
  (void)cd_values;
  if (!(flags & H5Z_FLAG_REVERSE)) return 0; /* reading only */
  unsigned long long n = ZSTD_getFrameContentSize(*buf, nbytes);
  if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN) return 0;
  void* out = malloc(n ? n : 1);
  if (!out) return 0;
  size_t got = ZSTD_decompress(out, n, *buf, nbytes);
  if (ZSTD_isError(got) || got != n) {
    free(out);
    return 0;
  }
  free(*buf);
  *buf = out;
  *buf_size = n;
  return n;
}

static const H5Z_class2_t zstd_read_class = {H5Z_CLASS_T_VERS, 32015, 1, 1, "zstd (ferry test plugin)",
                                             NULL, NULL, zstd_read_filter};

H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }
const void* H5PLget_plugin_info(void) { return &zstd_read_class; }
