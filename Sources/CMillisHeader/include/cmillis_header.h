#ifndef CMILLIS_HEADER_H
#define CMILLIS_HEADER_H
/* The public header, seen by the Swift exports: the types a C caller passes by
 * layout (millis_event) come from the very declaration the caller compiles with. */
#include "../../../include/millis.h"
#endif
