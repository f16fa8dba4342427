/*
 * mizan.testkit: blocking process and socket helpers for specs.
 *
 * Specs drive a real `mizan` child process over real sockets, so these calls
 * block the calling state on purpose (with a timeout on every wait). They
 * are never used on a serving path. Runtime failures return nil, err; misuse
 * raises.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fail(lua_State *L, const char *what) {
  lua_pushnil(L);
  lua_pushstring(L, what);
  return 2;
}

static int fail_errno(lua_State *L) { return fail(L, strerror(errno)); }

static int timeout_ms(lua_State *L, int idx, int dflt) {
  double s = luaL_optnumber(L, idx, dflt / 1000.0);
  return s < 0 ? -1 : (int)(s * 1000);
}

/* spawn(argv, {env}, stdout_path?, stderr_path?) -> pid */
static int l_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int argc = (int)lua_objlen(L, 1);
  if (argc < 1) return luaL_argerror(L, 1, "argv is empty");
  const char *out = luaL_optstring(L, 3, NULL), *err = luaL_optstring(L, 4, NULL);
  /* Build argv and the extra environment before forking: Lua must not run
     in the child. The strings stay anchored by the argument tables. */
  const char **argv = lua_newuserdata(L, sizeof(char *) * (size_t)(argc + 1));
  for (int i = 0; i < argc; i++) {
    lua_rawgeti(L, 1, i + 1);
    argv[i] = luaL_checkstring(L, -1);
    lua_pop(L, 1);
  }
  argv[argc] = NULL;
  int nenv = 0;
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) nenv++, lua_pop(L, 1);
  }
  const char **envk = lua_newuserdata(L, sizeof(char *) * (size_t)(nenv * 2 + 1));
  int k = 0;
  if (nenv) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      envk[k++] = luaL_checkstring(L, -2);
      envk[k++] = lua_type(L, -1) == LUA_TBOOLEAN ? NULL : luaL_checkstring(L, -1);
      lua_pop(L, 1);
    }
  }
  pid_t pid = fork();
  if (pid < 0) return fail_errno(L);
  if (pid == 0) {
    setpgid(0, 0);
    for (int i = 0; i < k; i += 2) {
      if (envk[i + 1]) setenv(envk[i], envk[i + 1], 1);
      else unsetenv(envk[i]);
    }
    if (out) {
      int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) dup2(fd, 1), close(fd);
    }
    if (err) {
      int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) dup2(fd, 2), close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0), close(devnull);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  lua_pushinteger(L, pid);
  return 1;
}

/* kill(pid, signal_name_or_number) -> true | nil, err */
static int l_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int sig = SIGTERM;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *n = lua_tostring(L, 2);
    static const struct { const char *n; int s; } sigs[] = {
        {"TERM", SIGTERM}, {"INT", SIGINT}, {"KILL", SIGKILL}, {"HUP", SIGHUP},
        {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"USR1", SIGUSR1}, {NULL, 0}};
    int found = 0;
    for (int i = 0; sigs[i].n; i++)
      if (strcmp(sigs[i].n, n) == 0) sig = sigs[i].s, found = 1;
    if (!found) return luaL_argerror(L, 2, "unknown signal name");
  } else if (!lua_isnoneornil(L, 2)) {
    sig = (int)luaL_checkinteger(L, 2);
  }
  if (kill(pid, sig) < 0) return fail_errno(L);
  lua_pushboolean(L, 1);
  return 1;
}

/* wait(pid, timeout_s) -> exit_code, how ("exit"|"signal") | nil, "timeout" */
static int l_wait(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int ms = timeout_ms(L, 2, 10000);
  for (int waited = 0;; waited += 10) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r < 0) return fail_errno(L);
    if (r == pid) {
      if (WIFEXITED(st)) {
        lua_pushinteger(L, WEXITSTATUS(st));
        lua_pushliteral(L, "exit");
      } else {
        lua_pushinteger(L, WTERMSIG(st));
        lua_pushliteral(L, "signal");
      }
      return 2;
    }
    if (ms >= 0 && waited >= ms) return fail(L, "timeout");
    usleep(10000);
  }
}

/* connect(host, port, timeout_s) -> fd | nil, err */
static int l_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  int ms = timeout_ms(L, 3, 5000);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return luaL_argerror(L, 1, "not an IPv4 address");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno(L);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return fail(L, strerror(e));
  }
  struct pollfd p = {fd, POLLOUT, 0};
  int r = poll(&p, 1, ms);
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (r <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
    close(fd);
    return fail(L, r == 0 ? "timeout" : strerror(soerr ? soerr : errno));
  }
  lua_pushinteger(L, fd);
  return 1;
}

/* send(fd, data, timeout_s) -> bytes_sent | nil, err */
static int l_send(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  int ms = timeout_ms(L, 3, 5000);
  size_t off = 0;
  while (off < n) {
    ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
    if (w > 0) { off += (size_t)w; continue; }
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      if (off) break;
      return fail_errno(L);
    }
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, ms) <= 0) break;
  }
  lua_pushinteger(L, (lua_Integer)off);
  return 1;
}

/* recv(fd, max, timeout_s) -> data | nil, "timeout" | nil, "closed" | nil, err */
static int l_recv(lua_State *L) {
  int fd = (int)luaL_checkinteger(L, 1);
  size_t max = (size_t)luaL_optinteger(L, 2, 65536);
  int ms = timeout_ms(L, 3, 5000);
  struct pollfd p = {fd, POLLIN, 0};
  int r = poll(&p, 1, ms);
  if (r == 0) return fail(L, "timeout");
  if (r < 0) return fail_errno(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char *dst = luaL_prepbuffer(&b);
  if (max > LUAL_BUFFERSIZE) max = LUAL_BUFFERSIZE;
  ssize_t got = recv(fd, dst, max, 0);
  if (got == 0) return fail(L, "closed");
  if (got < 0) {
    if (errno == ECONNRESET) return fail(L, "closed");
    return fail_errno(L);
  }
  luaL_addsize(&b, (size_t)got);
  luaL_pushresult(&b);
  return 1;
}

static int l_close(lua_State *L) {
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

static int l_shutdown(lua_State *L) {
  shutdown((int)luaL_checkinteger(L, 1), SHUT_WR);
  return 0;
}

/* exe() -> absolute path of the running binary */
static int l_exe(lua_State *L) {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return fail_errno(L);
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* sleep(seconds): block the whole process; for specs only */
static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
  return 0;
}

/* fork(fn) -> pid: run fn() in a child copy of this process, which then
   exits (0 when fn returned, 1 when it raised). For specs of what processes
   share, such as the cache's version slots. */
static int l_fork(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return fail_errno(L);
  if (pid == 0) {
    lua_pushvalue(L, 1);
    int r = lua_pcall(L, 0, 0, 0);
    _exit(r == 0 ? 0 : 1);
  }
  lua_pushinteger(L, pid);
  return 1;
}

/* A TCP socket bound to a fresh port on 127.0.0.1 (listening when
   backlog > 0): the descriptor, with the port in *port; or -errno. */
static int bind_loopback(int backlog, int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || (backlog > 0 && listen(fd, backlog) < 0) ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  *port = ntohs(sa.sin_port);
  return fd;
}

/* free_port() -> a TCP port on 127.0.0.1 that nothing listens on right now */
static int l_free_port(lua_State *L) {
  int port, fd = bind_loopback(0, &port);
  if (fd < 0) return fail(L, strerror(-fd));
  close(fd);
  lua_pushinteger(L, port);
  return 1;
}

/* Write all of buf to a blocking socket: 0, or -1 when the peer is gone. */
static int proxy_send_all(int fd, const char *buf, size_t n) {
  while (n) {
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf += w, n -= (size_t)w;
  }
  return 0;
}

static int proxy_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

#define PROXY_PAIRS 64

/* The child of proxy(): accept on lfd and forward bytes both ways between
   each client and its own connection to 127.0.0.1:target, with one poll()
   over everything; a pair ends when either side closes. Never returns. */
static void proxy_loop(int lfd, int target) {
  int pair[PROXY_PAIRS][2];
  int n = 0;
  static char buf[65536];
  for (;;) {
    struct pollfd p[1 + 2 * PROXY_PAIRS];
    p[0] = (struct pollfd){lfd, POLLIN, 0};
    for (int i = 0; i < n; i++) {
      p[1 + 2 * i] = (struct pollfd){pair[i][0], POLLIN, 0};
      p[2 + 2 * i] = (struct pollfd){pair[i][1], POLLIN, 0};
    }
    if (poll(p, (nfds_t)(1 + 2 * n), -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    /* backwards, so a closed pair can take the last one's place */
    for (int i = n - 1; i >= 0; i--) {
      for (int side = 0; side < 2; side++) {
        if (!p[1 + 2 * i + side].revents) continue;
        ssize_t got = recv(pair[i][side], buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0 || proxy_send_all(pair[i][!side], buf, (size_t)got)) {
          close(pair[i][0]);
          close(pair[i][1]);
          pair[i][0] = pair[n - 1][0], pair[i][1] = pair[n - 1][1];
          n--;
          break;
        }
      }
    }
    if (p[0].revents & POLLIN) {
      int c = accept(lfd, NULL, NULL);
      if (c < 0) continue;
      int u = n < PROXY_PAIRS ? proxy_connect(target) : -1;
      if (u < 0) {
        close(c);
        continue;
      }
      pair[n][0] = c, pair[n][1] = u;
      n++;
    }
  }
}

/* proxy(target_port) -> pid, port: a TCP proxy in a child process, from a
   fresh port on 127.0.0.1 to 127.0.0.1:target_port. Stopping the child
   (SIGSTOP) freezes every connection through it, as a dead network path
   does: they stay open and nothing moves. The child dies with this
   process; kill(pid, "KILL") and wait(pid) end it sooner. */
static int l_proxy(lua_State *L) {
  int target = (int)luaL_checkinteger(L, 1);
  int port, lfd = bind_loopback(64, &port);
  if (lfd < 0) return fail(L, strerror(-lfd));
  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(lfd);
    return fail(L, strerror(e));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(0);
    signal(SIGPIPE, SIG_IGN);
    proxy_loop(lfd, target);
  }
  close(lfd);
  lua_pushinteger(L, pid);
  lua_pushinteger(L, port);
  return 2;
}

static int l_getpid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

int mz_testkit_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"spawn", l_spawn}, {"kill", l_kill},   {"wait", l_wait},   {"connect", l_connect},
      {"send", l_send},   {"recv", l_recv},   {"close", l_close}, {"shutdown", l_shutdown},
      {"exe", l_exe},     {"sleep", l_sleep}, {"getpid", l_getpid}, {"free_port", l_free_port}, {"fork", l_fork},
      {"proxy", l_proxy},
      {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
