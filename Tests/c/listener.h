/*
 * listener.h — a TCP listener for the C tests that never accepts: connections complete
 * in the kernel's backlog and the WebSocket upgrade is never answered, so a client
 * stays "connecting" for as long as the test wants. Include after check.h.
 */
#ifndef MILLIS_TEST_LISTENER_H
#define MILLIS_TEST_LISTENER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* Listens on 127.0.0.1 (a free port), writes its ws:// URL to url; returns the fd. */
static int silent_listener(char *url, size_t cap, int backlog)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(fd, backlog) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    snprintf(url, cap, "ws://127.0.0.1:%u/millis", (unsigned)ntohs(addr.sin_port));
    return fd;
}

#endif
