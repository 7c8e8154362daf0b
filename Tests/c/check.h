/*
 * check.h — the assertions of the C test programs. Failures may happen on the library's
 * network thread: they flush and _exit, so that no atexit handler races that thread.
 */
#ifndef MILLIS_TEST_CHECK_H
#define MILLIS_TEST_CHECK_H

#include <millis.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int checks_passed; /* one counter per program: each includes this once */

static void fail_at(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what);
    fflush(NULL);
    _exit(1);
}

#define CHECK(cond) \
    do { if (!(cond)) fail_at(__FILE__, __LINE__, #cond); else __atomic_add_fetch(&checks_passed, 1, __ATOMIC_RELAXED); } while (0)

/* A call that must return `want`; prints what it got otherwise. */
#define CHECK_STATUS(call, want) \
    do { millis_status got_ = (call); \
         if (got_ != (want)) { fprintf(stderr, "  %s returned %d (%s), expected %d (%s)\n", #call, (int)got_, \
                                       millis_status_string(got_), (int)(want), millis_status_string(want)); \
                               fail_at(__FILE__, __LINE__, #call " == " #want); } \
         else __atomic_add_fetch(&checks_passed, 1, __ATOMIC_RELAXED); } while (0)

#define CHECK_STR_EQ(a, b) \
    do { const char *a_ = (a), *b_ = (b); \
         if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) { \
             fprintf(stderr, "  %s = \"%s\", %s = \"%s\"\n", #a, a_ ? a_ : "(null)", #b, b_ ? b_ : "(null)"); \
             fail_at(__FILE__, __LINE__, #a " equals " #b); } \
         else __atomic_add_fetch(&checks_passed, 1, __ATOMIC_RELAXED); } while (0)

#define CHECK_LONG_EQ(a, b) \
    do { long a_ = (long)(a), b_ = (long)(b); \
         if (a_ != b_) { fprintf(stderr, "  %s = %ld, %s = %ld\n", #a, a_, #b, b_); fail_at(__FILE__, __LINE__, #a " == " #b); } \
         else __atomic_add_fetch(&checks_passed, 1, __ATOMIC_RELAXED); } while (0)

#endif
