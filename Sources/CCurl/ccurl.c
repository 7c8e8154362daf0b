#include "ccurl.h"

CURLcode ccurl_easy_setopt_long(CURL *h, CURLoption opt, long value) {
    return curl_easy_setopt(h, opt, value);
}
CURLcode ccurl_easy_setopt_string(CURL *h, CURLoption opt, const char *value) {
    return curl_easy_setopt(h, opt, value);
}
CURLcode ccurl_easy_setopt_pointer(CURL *h, CURLoption opt, void *value) {
    return curl_easy_setopt(h, opt, value);
}
CURLcode ccurl_easy_getinfo_socket(CURL *h, curl_socket_t *out) {
    return curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, out);
}
CURLcode ccurl_easy_getinfo_pointer(CURL *h, CURLINFO info, void **out) {
    return curl_easy_getinfo(h, info, out);
}
CURLcode ccurl_easy_getinfo_long(CURL *h, CURLINFO info, long *out) {
    return curl_easy_getinfo(h, info, out);
}
CURLMcode ccurl_multi_set_callbacks(CURLM *m, ccurl_socket_cb socket_cb, ccurl_timer_cb timer_cb,
                                    void *userp) {
    CURLMcode rc = curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, socket_cb);
    if (rc == CURLM_OK) rc = curl_multi_setopt(m, CURLMOPT_SOCKETDATA, userp);
    if (rc == CURLM_OK) rc = curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, timer_cb);
    if (rc == CURLM_OK) rc = curl_multi_setopt(m, CURLMOPT_TIMERDATA, userp);
    return rc;
}
CURL *ccurl_msg_easy(CURLMsg *msg) { return msg->easy_handle; }
int ccurl_msg_is_done(CURLMsg *msg) { return msg->msg == CURLMSG_DONE; }
CURLcode ccurl_msg_result(CURLMsg *msg) { return msg->data.result; }

CURLSH *ccurl_share_connections(void)
{
    CURLSH *share = curl_share_init();
    if (share == NULL) return NULL;
    if (curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK) {
        curl_share_cleanup(share);
        return NULL;
    }
    return share;
}
