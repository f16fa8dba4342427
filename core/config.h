/*
 * mz_config: what C needs of the app's settings, filled in one call.
 *
 * The options themselves (names, environment variables, defaults, checks)
 * are described once, in lua/mizan/options.lua; an option marked `c` there
 * lands in the field of the same name here. C keeps no defaults of its own
 * for them: mz_host_config fails when Lua and this struct disagree on the
 * set of fields, so an option cannot reach one side and not the other.
 */
#ifndef MZ_CONFIG_H
#define MZ_CONFIG_H

#include <stddef.h>

#include "host.h"
#include "http.h"

typedef struct mz_config {
  char listen[256];        /* address:port to serve on */
  char base_path[128];     /* "/api/mizan/": leading and trailing slash */
  char access_log[8];      /* "off" | "text" | "json" | "" (by mode) */
  char observe_listen[256]; /* "" when health and metrics share the main address */
  char static_dir[4096];   /* absolute, or "" */
  char session_cookie[64]; /* the session cookie's name */
  int metrics;             /* serve GET <base>metrics */
  int workers;             /* 0: one per core */
  int secret_configured;   /* MIZAN_SECRET (or mizan.config) set one */
  mz_http_limits limits;   /* every field an option but max_output (C's own) */
} mz_config;

/**
 * Fill *out from the loaded app's effective config (mizan.config.c_view of
 * the table mz_host_load kept). Returns 0, or -1 with a message in
 * err[0..errlen) when the view and the struct disagree (a field missing,
 * unknown, of the wrong type, or too long). The struct owns its strings.
 */
int mz_host_config(mz_host *h, mz_config *out, char *err, size_t errlen);

#endif
