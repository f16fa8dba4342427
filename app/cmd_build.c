/*
 * mizan build [APP] -o FILE: one executable with the app inside.
 *
 * FILE is this (statically linked) binary followed by the app's archive
 * (lua/mizan/bundle.lua: LuaJIT bytecode of every .lua file) and a trailer:
 * the archive's length (8 bytes, little endian) and "MIZANAPP". At start,
 * main() finds the trailer and serves the app inside: `FILE serve`.
 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmd.h"

#define TRAILER 16

/* Read a whole file; NULL on failure. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* The length of the runtime part of a binary: all of it, or what comes
   before an app archive already appended. */
static size_t runtime_len(const char *exe, size_t len) {
  if (len < TRAILER || memcmp(exe + len - 8, "MIZANAPP", 8)) return len;
  uint64_t n = 0;
  memcpy(&n, exe + len - TRAILER, 8);
  return n + TRAILER <= len ? len - TRAILER - (size_t)n : len;
}

int mz_app_payload_detect(void) {
  size_t len;
  char *exe = slurp("/proc/self/exe", &len);
  if (!exe) return 0;
  size_t head = runtime_len(exe, len);
  if (head == len) {
    free(exe);
    return 0;
  }
  /* kept for the life of the process */
  mz_host_set_embedded_app(exe + head, len - head - TRAILER);
  return 1;
}

/* progress(path, bytes[, "text"]): one line per file packed; migrations
   travel as their text (lua/mizan/bundle.lua says why). */
static int progress(lua_State *L) {
  int text = lua_toboolean(L, 3);
  fprintf(stderr, "  %-8s %-40s %6d bytes of %s\n", text ? "kept" : "compiled", lua_tostring(L, 1),
          (int)lua_tointeger(L, 2), text ? "text" : "bytecode");
  return 0;
}

int cmd_build(int argc, char **argv) {
  mz_cli_line line;
  int pr = mz_cli_parse(mz_cli_find("build"), argc, argv, &line);
  if (pr) return pr == 1 ? 0 : 2;
  const char *out = line.opt[0];
  if (!out) {
    return mz_cli_error("build", "where to? give -o FILE%s", "");
  }
  const char *app = mz_cli_app("build", &line, 0);
  if (!app) return 1;
  uint64_t t0 = uv_hrtime();
  fprintf(stderr, "mizan build: %s -> %s\n", app, out);
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_TEST)) return 1;
  /* check that it loads at all before packing it */
  if (mz_host_load(&host, app)) return 1;
  lua_State *L = host.L;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "mizan.bundle");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "pack");
  lua_pushstring(L, app);
  lua_pushcfunction(L, progress);
  if (lua_pcall(L, 2, 2, 0)) {
    fprintf(stderr, "mizan build: %s\n", lua_tostring(L, -1));
    return 1;
  }
  size_t alen;
  const char *archive = lua_tolstring(L, -2, &alen);
  size_t elen;
  char *exe = slurp("/proc/self/exe", &elen);
  if (!exe) {
    fprintf(stderr, "mizan build: cannot read this executable: %s\n", strerror(errno));
    return 1;
  }
  size_t head = runtime_len(exe, elen);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", out);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  uint64_t n = alen;
  int ok = fd >= 0 && write(fd, exe, head) == (ssize_t)head && write(fd, archive, alen) == (ssize_t)alen &&
           write(fd, &n, 8) == 8 && write(fd, "MIZANAPP", 8) == 8;
  if (fd >= 0) close(fd);
  free(exe);
  if (!ok || rename(tmp, out) < 0) {
    fprintf(stderr, "mizan build: cannot write %s: %s\n", out, strerror(errno));
    unlink(tmp);
    return 1;
  }
  chmod(out, 0755);
  fprintf(stderr, "mizan build: wrote %s: %.1f MB runtime + %.1f KB app, in %.0f ms\n", out, head / 1048576.0,
          alen / 1024.0, (double)(uv_hrtime() - t0) / 1e6);
  fprintf(stderr, "  run it with: MIZAN_SECRET=... %s serve\n", out);
  mz_host_close(&host);
  return 0;
}
