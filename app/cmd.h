/* The mizan commands. Each returns the process exit code. */
#ifndef MZ_CMD_H
#define MZ_CMD_H

#include <sys/resource.h>

#include "host.h"

int cmd_serve(int argc, char **argv, mz_mode mode);
int cmd_schema(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_lua(int argc, char **argv);
int cmd_users(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_new(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_codegen(int argc, char **argv);

/** 1 if this executable carries an app (mizan build); the host then has it. */
int mz_app_payload_detect(void);

/**
 * Raise the soft descriptor limit to the hard one: every connection is a
 * descriptor, and the usual soft limit (1024) is far below what one process
 * serves or, in specs, opens. Fills *rl (after) and *was (before); 0, or
 * -1 when the limit cannot be read.
 */
int mz_cmd_raise_nofile(struct rlimit *rl, rlim_t *was);

/**
 * Set the global `arg` as a Lua script sees it: arg[0] = arg0 (left out
 * when NULL), arg[1..argc] = argv.
 */
void mz_cmd_set_arg(lua_State *L, const char *arg0, int argc, char **argv);

/**
 * Run `module.fn(args...)` from the embedded framework on the host's main
 * state with a traceback handler. `args` are strings. Returns 0, or prints
 * the error and returns -1. When `result` is not NULL it receives the
 * function's first result if that is a number (else 0).
 */
int mz_cmd_call_lua(mz_host *h, const char *module, const char *fn, int nargs, const char **args,
                    int *result);

#endif
