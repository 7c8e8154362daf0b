/* Empty: SwiftPM builds a C target from at least one source file. The target only
 * carries include/millis.h to the Swift exports (include/cmillis_header.h). */
#include "cmillis_header.h"
