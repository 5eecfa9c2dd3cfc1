#include <lmdb.h>
#include <fcntl.h>

/* O_DIRECT is a GNU extension that Swift's Glibc module does not import; a copy opens its file with it, as LMDB's
   own mdb_env_copy2 does (the copy then bypasses the page cache). */
#ifdef O_DIRECT
static const int circuito_open_direct = O_DIRECT;
#else
static const int circuito_open_direct = 0;
#endif
