/*
 * mizan.bus: messages between the worker processes of one instance, with no
 * server: each worker binds a Unix datagram socket in a folder the master
 * made (MIZAN_BUS_DIR), and a publish is one datagram to every other socket
 * there. Used for channel broadcasts. Datagrams are limited in size by the
 * kernel (about 200 KB); a larger message is refused with an error.
 *
 * The bus is a resource of the host that opened it (host.h, THE OWNERSHIP
 * RULE): it closes when that host retires, since every datagram would start
 * a task there. A state that replaces it (mizan dev) opens a bus of its own,
 * under a name of its own (<pid>.<n>.sock), so the two never share a path.
 */
#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "host.h"

typedef struct {
  mz_resource res; /* first: the host's list links it */
  int fd;
  uv_poll_t poll;
  char dir[200];
  char self[300];
  mz_host *host;
  int fn_ref;
} bus;

static unsigned bus_serial; /* names the sockets of successive states apart */

/* The host's open bus, or NULL: found through its resource list. */
static void bus_close(mz_resource *r);
static bus *bus_of(mz_host *h) {
  for (mz_resource *r = h->resources; r; r = r->next)
    if (r->close == bus_close) return (bus *)r;
  return NULL;
}

static void deliver_done(mz_task *t, lua_State *co, int ok) {
  if (!ok) fprintf(stderr, "mizan [error] bus handler failed: %s\n", lua_tostring(co, -1));
  mz_task_release(t);
  free(t);
}

static void readable(uv_poll_t *p, int status, int events) {
  bus *b = p->data;
  (void)events;
  if (status < 0) return;
  static char buf[256 * 1024];
  for (;;) {
    ssize_t n = recv(b->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) break;
    mz_task *t = malloc(sizeof *t);
    if (!t) break;
    lua_State *co = mz_task_acquire(b->host, t, deliver_done, NULL);
    lua_rawgeti(co, LUA_REGISTRYINDEX, b->fn_ref);
    lua_pushlstring(co, buf, (size_t)n);
    mz_task_resume(t, 1);
  }
}

/* open(dir, fn) -> true | nil, err: join the bus; fn(payload) runs (as a
   task) for every message another worker publishes. */
static int l_open(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  mz_host *h = mz_host_from(L);
  if (bus_of(h)) return luaL_error(L, "the bus is open already");
  if (h->retired) return luaL_error(L, "bus.open: this state is retired (a reload replaced it)");
  bus *b = calloc(1, sizeof *b);
  if (!b) return luaL_error(L, "out of memory");
  snprintf(b->dir, sizeof b->dir, "%s", dir);
  snprintf(b->self, sizeof b->self, "%s/%d.%u.sock", dir, (int)getpid(), bus_serial++);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(b->self) >= sizeof sa.sun_path) {
    free(b);
    lua_pushnil(L);
    lua_pushliteral(L, "the bus folder's path is too long");
    return 2;
  }
  strcpy(sa.sun_path, b->self);
  unlink(b->self);
  b->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (b->fd < 0 || bind(b->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    if (b->fd >= 0) close(b->fd);
    free(b);
    lua_pushnil(L);
    lua_pushstring(L, strerror(e));
    return 2;
  }
  b->host = h;
  lua_pushvalue(L, 2);
  b->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uv_poll_init(b->host->loop, &b->poll, b->fd);
  b->poll.data = b;
  uv_poll_start(&b->poll, UV_READABLE, readable);
  uv_unref((uv_handle_t *)&b->poll);
  b->res.retire = bus_close; /* a source of tasks: it goes when the host retires */
  b->res.close = bus_close;
  mz_host_own(h, &b->res);
  lua_pushboolean(L, 1);
  return 1;
}

/* publish(payload) -> how many other workers it was sent to | nil, err */
static int l_publish(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  bus *b = bus_of(mz_host_from(L));
  if (!b) {
    /* never opened, or closed when this host retired (a request of replaced
       code still finishing): a runtime failure, not misuse */
    lua_pushnil(L);
    lua_pushliteral(L, "the workers' bus is not open (this code may have been replaced by a reload)");
    return 2;
  }
  DIR *d = opendir(b->dir);
  if (!d) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  int sent = 0, err = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".sock")) continue;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", b->dir, e->d_name) >= sizeof sa.sun_path) continue;
    if (!strcmp(sa.sun_path, b->self)) continue;
    if (sendto(b->fd, p, n, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa) == (ssize_t)n) sent++;
    else if (errno == ECONNREFUSED || errno == ENOENT) unlink(sa.sun_path); /* a worker that is gone */
    else err = errno;
  }
  closedir(d);
  if (err == EMSGSIZE) {
    lua_pushnil(L);
    lua_pushliteral(L, "the message is too big to cross between workers");
    return 2;
  }
  lua_pushinteger(L, sent);
  return 1;
}

static void bus_freed(uv_handle_t *hd) { free(hd->data); }

/* Retire and close hook: leave the bus (the socket's name goes, so the other
   workers stop sending to it), and free it once libuv is done with it. */
static void bus_close(mz_resource *r) {
  bus *b = (bus *)r;
  mz_host_disown(&b->res);
  if (b->host->L) luaL_unref(b->host->L, LUA_REGISTRYINDEX, b->fn_ref);
  unlink(b->self);
  uv_poll_stop(&b->poll);
  uv_close((uv_handle_t *)&b->poll, bus_freed);
  close(b->fd);
}

int mz_bus_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"open", l_open}, {"publish", l_publish}, {NULL, NULL}};
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  return 1;
}
