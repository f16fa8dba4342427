/*
 * Only in the static build (MIZAN_STATIC): what Debian's libpq.a was built
 * against but Debian ships no static archive of, Kerberos (GSSAPI) and
 * OpenLDAP. These definitions answer "not available" so that libpq.a links
 * into one binary that needs only libc; libpq then behaves as if built
 * without them:
 *   - GSSAPI: every call fails, so GSS encryption and Kerberos
 *     authentication are never used (mizan.db also asks for gssencmode=
 *     disable, so in practice none of these is called);
 *   - LDAP: ldap_init fails, so a pg_service.conf "ldap://" entry is refused
 *     with libpq's own "could not create LDAP structure" error.
 * Password (SCRAM, md5), TLS (sslmode) and Unix-socket peer authentication
 * are unaffected. A dynamic build (MIZAN_STATIC=OFF) links the real
 * libraries through libpq.so and compiles none of this.
 *
 * The parameters are declared as the integers and pointers of the real
 * prototypes (gssapi.h, ldap.h) and left unused: on this ABI that is the
 * same call.
 */
#include <stddef.h>
#include <stdint.h>

typedef uint32_t OM_uint32;
typedef struct {
  size_t length;
  void *value;
} gss_buffer_desc;

#define GSS_S_FAILURE (13u << 16)
#define GSS_S_UNAVAILABLE (16u << 16)

void *GSS_C_NT_HOSTBASED_SERVICE = NULL;

static OM_uint32 unavailable(OM_uint32 *minor) {
  if (minor) *minor = 0;
  return GSS_S_UNAVAILABLE;
}

OM_uint32 gss_acquire_cred(OM_uint32 *m, void *a, OM_uint32 b, void *c, int d, void *e, void *f, void *g) {
  (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g;
  return unavailable(m);
}
OM_uint32 gss_import_name(OM_uint32 *m, void *a, void *b, void *c) {
  (void)a, (void)b, (void)c;
  return unavailable(m);
}
OM_uint32 gss_init_sec_context(OM_uint32 *m, void *a, void *b, void *c, void *d, OM_uint32 e, OM_uint32 f,
                               void *g, void *h, void *i, void *j, void *k, void *l) {
  (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h, (void)i, (void)j, (void)k, (void)l;
  return unavailable(m);
}
OM_uint32 gss_wrap(OM_uint32 *m, void *a, int b, OM_uint32 c, void *d, void *e, void *f) {
  (void)a, (void)b, (void)c, (void)d, (void)e, (void)f;
  return unavailable(m);
}
OM_uint32 gss_unwrap(OM_uint32 *m, void *a, void *b, void *c, void *d, void *e) {
  (void)a, (void)b, (void)c, (void)d, (void)e;
  return unavailable(m);
}
OM_uint32 gss_wrap_size_limit(OM_uint32 *m, void *a, int b, OM_uint32 c, OM_uint32 d, OM_uint32 *e) {
  (void)a, (void)b, (void)c, (void)d;
  if (e) *e = 0;
  return unavailable(m);
}
/* libpq prints what this says when a GSS call fails: say why */
OM_uint32 gss_display_status(OM_uint32 *m, OM_uint32 a, int b, void *c, OM_uint32 *ctx, gss_buffer_desc *out) {
  (void)a, (void)b, (void)c;
  static char msg[] = "GSSAPI is not available in this static build of mizan";
  if (ctx) *ctx = 0;
  if (out) out->length = sizeof msg - 1, out->value = msg;
  if (m) *m = 0;
  return 0;
}
/* nothing was ever allocated: releasing is a no-op that succeeds */
OM_uint32 gss_release_buffer(OM_uint32 *m, gss_buffer_desc *b) {
  if (b) b->length = 0, b->value = NULL;
  if (m) *m = 0;
  return 0;
}
OM_uint32 gss_release_cred(OM_uint32 *m, void *a) {
  (void)a;
  if (m) *m = 0;
  return 0;
}
OM_uint32 gss_release_name(OM_uint32 *m, void *a) {
  (void)a;
  if (m) *m = 0;
  return 0;
}
OM_uint32 gss_delete_sec_context(OM_uint32 *m, void *a, void *b) {
  (void)a, (void)b;
  if (m) *m = 0;
  return 0;
}

/* LDAP: ldap_init fails first, so libpq never reaches the others */
#define LDAP_NOT_SUPPORTED (-12)
void *ldap_init(const char *host, int port) {
  (void)host, (void)port;
  return NULL;
}
char *ldap_err2string(int err) {
  (void)err;
  return (char *)"LDAP is not available in this static build of mizan";
}
int ldap_set_option(void *ld, int opt, const void *v) { (void)ld, (void)opt, (void)v; return LDAP_NOT_SUPPORTED; }
int ldap_simple_bind(void *ld, const char *who, const char *pw) { (void)ld, (void)who, (void)pw; return -1; }
int ldap_search_st(void *ld, const char *base, int scope, const char *filter, char **attrs, int only, void *tv,
                   void **res) {
  (void)ld, (void)base, (void)scope, (void)filter, (void)attrs, (void)only, (void)tv;
  if (res) *res = NULL;
  return LDAP_NOT_SUPPORTED;
}
int ldap_result(void *ld, int id, int all, void *tv, void **res) {
  (void)ld, (void)id, (void)all, (void)tv;
  if (res) *res = NULL;
  return -1;
}
int ldap_count_entries(void *ld, void *res) { (void)ld, (void)res; return -1; }
void *ldap_first_entry(void *ld, void *res) { (void)ld, (void)res; return NULL; }
void **ldap_get_values_len(void *ld, void *e, const char *attr) { (void)ld, (void)e, (void)attr; return NULL; }
void ldap_value_free_len(void **vals) { (void)vals; }
int ldap_msgfree(void *res) { (void)res; return 0; }
int ldap_unbind(void *ld) { (void)ld; return 0; }
