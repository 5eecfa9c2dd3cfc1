#ifndef CIRCUITO_PROCESS_H
#define CIRCUITO_PROCESS_H

// prctl, which is variadic and so not callable from Swift.

/// Keeps this process out of core dumps: a core size limit of 0 (soft and hard, so no child raises it again) and
/// PR_SET_DUMPABLE 0 (which also covers a core handler that ignores the limit). 0 on success, -1 with errno set.
int circuito_process_exclude_from_core_dumps(void);

#endif
