/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file ferry.h
 * @brief Self-checkpoint: a program asks ferry for its own checkpoint.
 *
 * Programs that do not call this need nothing: ferry checkpoints them from outside.
 * Link with -lferry (libferry.so). Only meaningful under `ferry launch` or `ferry restart`,
 * which set FERRY_CONTROL in the environment.
 *
 * @code
 *   #include <ferry/ferry.h>
 *   int r = ferry_checkpoint();
 *   if (r == FERRY_RESTARTED) reopen_network_connections();
 *   else if (r < 0) perror("ferry_checkpoint");
 * @endcode
 */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H

#ifdef __cplusplus
extern "C" {
#endif

/** The checkpoint was committed and this process continues. */
#define FERRY_RESUMED 1
/** This process was just restored from a checkpoint taken by this call. */
#define FERRY_RESTARTED 2

/**
 * Takes a checkpoint of the calling process and waits until it is committed.
 *
 * Must be called while no other thread of the process runs MPI or ferry calls. Blocks while
 * the image is written.
 *
 * @return FERRY_RESUMED after a committed checkpoint; FERRY_RESTARTED when the process was
 *         restored from the generation this call produced; -1 with errno set on failure:
 *         ENOTSUP when not running under ferry, ECONNREFUSED when the ferry supervisor is
 *         gone, EIO when the checkpoint failed (the reason is on the supervisor's stderr).
 */
int ferry_checkpoint(void);

/** @return 1 when running under ferry (FERRY_CONTROL is set), else 0. */
int ferry_is_managed(void);

#ifdef __cplusplus
}
#endif

#endif /* FERRY_FERRY_H */
