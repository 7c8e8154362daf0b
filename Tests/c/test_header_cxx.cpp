/*
 * test_header_cxx.cpp — millis.h is usable from C++.
 *
 *   g++ -std=c++11 -Wall -Wextra -Werror -pedantic -x c++ -fsyntax-only \
 *       Tests/c/test_header_cxx.cpp $(pkg-config --cflags millis)
 *   g++ -std=c++11 Tests/c/test_header_cxx.cpp $(pkg-config --cflags --libs millis) -o t && ./t
 *
 * The syntax check proves the header parses as C++; linking proves the extern "C"
 * guards: without them every call below would reference a mangled name and fail to link.
 */
#include <millis.h>
#include <millis.h> /* include guard */

#include <cstdio>
#include <cstring>

static void on_close(millis_client *, int, const char *, void *) {}

int main()
{
    millis_status err = MILLIS_OK;
    millis_config *cfg = millis_config_create();
    millis_client *client;
    char *stats;
    millis_close_cb cb = on_close;

    if (millis_version_number() != MILLIS_VERSION_NUMBER) return 1;
    if (std::strcmp(millis_status_string(MILLIS_ERR_INVALID_JSON), "") == 0) return 1;
    if (cfg == 0 || millis_config_set_public_key(cfg, "test-public-key") != MILLIS_OK) return 1;
    client = millis_client_create(cfg, &err);
    millis_config_destroy(cfg);
    if (client == 0 || err != MILLIS_OK) return 1;
    if (millis_client_on_close(client, cb, 0) != MILLIS_OK) return 1;
    stats = millis_client_stats_json(client);
    std::printf("C++: libmillis %s, stats %s\n", millis_version(), stats ? stats : "(null)");
    millis_free(stats);
    millis_client_destroy(client);
    return 0;
}
