/*
 * Only in the static build (MIZAN_STATIC): what Debian's libcurl.a was built
 * against but cannot be linked statically with Debian's packages alone:
 * Kerberos (GSSAPI: no static archive), OpenLDAP (libldap.a needs GnuTLS and
 * Cyrus SASL, which ship no usable static archive) and librtmp (built on
 * GnuTLS). As core/pg_static.c does for libpq, these definitions answer "not
 * available"; the GSSAPI calls libpq and libcurl share are defined there.
 *
 * None of them is reached: core/http_client.c enables only the http and
 * https protocols (CURLOPT_PROTOCOLS_STR, CURLOPT_REDIR_PROTOCOLS_STR), so
 * ldap:// and rtmp:// URLs are refused before any of this code, and it never
 * asks for Negotiate (SPNEGO) authentication. If something did call them,
 * each fails cleanly.
 *
 * Parameters are the integers and pointers of the real prototypes, unused.
 */
#include <stddef.h>
#include <stdint.h>

typedef uint32_t OM_uint32;
#define GSS_S_UNAVAILABLE (16u << 16)
#define LDAP_NOT_SUPPORTED (-12)

/* GSSAPI (the rest is in pg_static.c) */
OM_uint32 gss_display_name(OM_uint32 *m, void *a, void *b, void *c) {
  (void)a, (void)b, (void)c;
  if (m) *m = 0;
  return GSS_S_UNAVAILABLE;
}
OM_uint32 gss_inquire_context(OM_uint32 *m, void *a, void *b, void *c, void *d, void *e, void *f, void *g,
                              void *h) {
  (void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h;
  if (m) *m = 0;
  return GSS_S_UNAVAILABLE;
}

/* librtmp: RTMP_Alloc fails first, so curl's rtmp handler stops there */
void *RTMP_Alloc(void) { return NULL; }
void RTMP_Free(void *r) { (void)r; }
void RTMP_Init(void *r) { (void)r; }
void RTMP_Close(void *r) { (void)r; }
int RTMP_SetupURL(void *r, char *url) { (void)r, (void)url; return 0; }
int RTMP_Connect1(void *r, void *cp) { (void)r, (void)cp; return 0; }
int RTMP_ConnectStream(void *r, int seek) { (void)r, (void)seek; return 0; }
void RTMP_SetBufferMS(void *r, int ms) { (void)r, (void)ms; }
int RTMP_Read(void *r, char *buf, int size) { (void)r, (void)buf, (void)size; return -1; }
int RTMP_Write(void *r, const char *buf, int size) { (void)r, (void)buf, (void)size; return -1; }

/* OpenLDAP: ldap_url_parse fails first (curl then refuses the URL) */
int ldap_url_parse(const char *url, void **out) {
  (void)url;
  if (out) *out = NULL;
  return 1; /* LDAP_URL_ERR_MEM */
}
void ldap_free_urldesc(void *d) { (void)d; }
int ldap_pvt_url_scheme2proto(const char *s) { (void)s; return -1; }
int ldap_init_fd(int fd, int proto, const char *url, void **ld) {
  (void)fd, (void)proto, (void)url;
  if (ld) *ld = NULL;
  return LDAP_NOT_SUPPORTED;
}
int ldap_get_option(void *ld, int opt, void *out) { (void)ld, (void)opt, (void)out; return LDAP_NOT_SUPPORTED; }
int ldap_start_tls(void *ld, void *s, void *c, int *id) { (void)ld, (void)s, (void)c, (void)id; return LDAP_NOT_SUPPORTED; }
int ldap_sasl_bind(void *ld, const char *dn, const char *mech, void *cred, void *s, void *c, int *id) {
  (void)ld, (void)dn, (void)mech, (void)cred, (void)s, (void)c, (void)id;
  return LDAP_NOT_SUPPORTED;
}
int ldap_search_ext(void *ld, const char *base, int scope, const char *filter, char **attrs, int only, void *s,
                    void *c, void *tv, int limit, int *id) {
  (void)ld, (void)base, (void)scope, (void)filter, (void)attrs, (void)only, (void)s, (void)c, (void)tv, (void)limit,
      (void)id;
  return LDAP_NOT_SUPPORTED;
}
int ldap_abandon_ext(void *ld, int id, void *s, void *c) { (void)ld, (void)id, (void)s, (void)c; return 0; }
int ldap_unbind_ext(void *ld, void *s, void *c) { (void)ld, (void)s, (void)c; return 0; }
int ldap_msgtype(void *m) { (void)m; return -1; }
int ldap_parse_result(void *ld, void *res, int *err, char **dn, char **msg, char ***refs, void ***ctrls, int fr) {
  (void)ld, (void)res, (void)dn, (void)msg, (void)refs, (void)ctrls, (void)fr;
  if (err) *err = LDAP_NOT_SUPPORTED;
  return LDAP_NOT_SUPPORTED;
}
int ldap_parse_sasl_bind_result(void *ld, void *res, void **cred, int fr) {
  (void)ld, (void)res, (void)fr;
  if (cred) *cred = NULL;
  return LDAP_NOT_SUPPORTED;
}
int ldap_get_dn_ber(void *ld, void *e, void **ber, void *dn) { (void)ld, (void)e, (void)ber, (void)dn; return LDAP_NOT_SUPPORTED; }
int ldap_get_attribute_ber(void *ld, void *e, void *ber, void *attr, void **vals) {
  (void)ld, (void)e, (void)ber, (void)attr, (void)vals;
  return LDAP_NOT_SUPPORTED;
}
void ldap_memfree(void *p) { (void)p; }
void ber_free(void *b, int all) { (void)b, (void)all; }
void ber_bvfree(void *b) { (void)b; }
void ber_memfree(void *p) { (void)p; }
void ber_memvfree(void **v) { (void)v; }
int ber_sockbuf_add_io(void *sb, void *io, int layer, void *arg) { (void)sb, (void)io, (void)layer, (void)arg; return -1; }
