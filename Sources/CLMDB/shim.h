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

/* O_TMPFILE, likewise GNU-only: an unnamed file in a folder, given its name later with linkat (a key file is so
   either whole under its name or not there at all). glibc's __O_TMPFILE includes O_DIRECTORY. */
#if defined(__O_TMPFILE)
static const int circuito_open_temporary_file = __O_TMPFILE;
#else
static const int circuito_open_temporary_file = 0;
#endif

#include <sys/ioctl.h>
#include <sys/types.h>

/* glibc's fallocate, declared by <fcntl.h> only under _GNU_SOURCE, which Swift's Glibc module does not import. */
extern int fallocate(int descriptor, int mode, off_t offset, off_t length);

/* Reserves the blocks of the first `length` bytes of a file without changing its size: fallocate with
   FALLOC_FL_KEEP_SIZE (0x01). 0, or -1 with errno set. LMDB writes its lock file through a shared map, where a page
   with no block behind it on a full file system ends the process with SIGBUS instead of an error. */
static inline int circuito_reserve_file_blocks(int descriptor, long long length) {
    return fallocate(descriptor, 0x01, 0, (off_t)length);
}

/* Turns copy-on-write off for a file that is still empty, on file systems that have it (btrfs's FS_NOCOW_FL,
   0x00800000, through FS_IOC_GETFLAGS and FS_IOC_SETFLAGS): there every write of a mapped page that was written back
   needs a new block, so a reserved block would not be enough. Elsewhere the ioctl fails and nothing changes. */
static inline int circuito_disable_copy_on_write(int descriptor) {
    int flags = 0;
    if (ioctl(descriptor, _IOR('f', 1, long), &flags) != 0) return -1;
    flags |= 0x00800000;
    return ioctl(descriptor, _IOW('f', 2, long), &flags);
}
