#include <lmdb.h>
#include <fcntl.h>

/* O_DIRECT is a GNU extension, defined by <fcntl.h> only under _GNU_SOURCE, which Swift's Glibc module does not
   import; glibc defines its value as __O_DIRECT for every architecture. A backup sets it on its copy's file, as
   LMDB's own mdb_env_copy2 does, so that the copy bypasses the page cache. */
#if defined(__O_DIRECT)
static const int circuito_open_direct = __O_DIRECT;
#elif defined(O_DIRECT)
static const int circuito_open_direct = O_DIRECT;
#else
#error "O_DIRECT is not known on this platform"
#endif
