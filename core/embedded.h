/*
 * The framework's Lua modules, compiled into the binary by cmake/embed.cmake
 * from the lua/ folder. The table ends with a NULL name.
 */
#ifndef MZ_EMBEDDED_H
#define MZ_EMBEDDED_H

#include <stddef.h>

typedef struct mz_embedded_module {
  const char *name;      /* "mizan.types" */
  const char *chunkname; /* "@mizan/types.lua", for tracebacks */
  const unsigned char *src;
  size_t len;
} mz_embedded_module;

extern const mz_embedded_module mz_embedded_modules[];

/** The module called `name`, or NULL. */
const mz_embedded_module *mz_embedded_find(const char *name);

#endif
