// zlib: raw inflate for reading bundle entries (bounded by the reader), deflate for the test/bench writer.
#include <zlib.h>
