/* Helpers shared by the commands. */
#include <lauxlib.h>
#include <stdio.h>
#include <sys/resource.h>

#include "cmd.h"

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

int mz_cmd_raise_nofile(struct rlimit *rl, rlim_t *was) {
  if (getrlimit(RLIMIT_NOFILE, rl) != 0) return -1;
  *was = rl->rlim_cur;
  if (rl->rlim_cur < rl->rlim_max) {
    rl->rlim_cur = rl->rlim_max;
    if (setrlimit(RLIMIT_NOFILE, rl) != 0) rl->rlim_cur = *was;
  }
  return 0;
}

void mz_cmd_set_arg(lua_State *L, const char *arg0, int argc, char **argv) {
  lua_createtable(L, argc, 1);
  if (arg0) {
    lua_pushstring(L, arg0);
    lua_rawseti(L, -2, 0);
  }
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
}

int mz_cmd_call_lua(mz_host *h, const char *module, const char *fn, int nargs, const char **args,
                    int *result) {
  lua_State *L = h->L;
  int base = lua_gettop(L);
  lua_pushcfunction(L, traceback);
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  if (lua_pcall(L, 1, 1, base + 1) == 0) {
    lua_getfield(L, -1, fn);
    for (int i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
    if (lua_pcall(L, nargs, 1, base + 1) == 0) {
      if (result) *result = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
      lua_settop(L, base);
      return 0;
    }
  }
  fprintf(stderr, "mizan: %s\n", lua_tostring(L, -1));
  lua_settop(L, base);
  return -1;
}
