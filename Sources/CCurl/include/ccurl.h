#ifndef CCURL_H
#define CCURL_H
/* libcurl for Swift: curl's setopt/getinfo functions are variadic, which Swift cannot
 * call, so these typed wrappers stand in for them. Internal: hidden from libmillis.so's
 * exports by the version script. */
#include <curl/curl.h>

CURLcode ccurl_easy_setopt_long(CURL *h, CURLoption opt, long value);
CURLcode ccurl_easy_setopt_string(CURL *h, CURLoption opt, const char *value);
CURLcode ccurl_easy_setopt_pointer(CURL *h, CURLoption opt, void *value);
CURLcode ccurl_easy_getinfo_socket(CURL *h, curl_socket_t *out);
CURLcode ccurl_easy_getinfo_pointer(CURL *h, CURLINFO info, void **out);
CURLcode ccurl_easy_getinfo_long(CURL *h, CURLINFO info, long *out);

typedef int (*ccurl_socket_cb)(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
typedef int (*ccurl_timer_cb)(CURLM *multi, long timeout_ms, void *userp);
CURLMcode ccurl_multi_set_callbacks(CURLM *m, ccurl_socket_cb socket_cb, ccurl_timer_cb timer_cb,
                                    void *userp);

/* A share with its own connection cache (CURL_LOCK_DATA_CONNECT), for handles used
 * from one thread only (no lock callbacks); NULL when curl refuses. */
CURLSH *ccurl_share_connections(void);

/* CURLMsg's data member is a union; Swift sees it awkwardly. */
CURL *ccurl_msg_easy(CURLMsg *msg);
int ccurl_msg_is_done(CURLMsg *msg);
CURLcode ccurl_msg_result(CURLMsg *msg);
#endif
