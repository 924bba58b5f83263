/* What every C example does around its handler: read the payload from stdin, and fail with
 * the reason on stderr and exit status 1 (the host records the call as failed). */
#ifndef WASMHOOK_IO_H
#define WASMHOOK_IO_H

#include "json.h"

/* Reads stdin to its end and parses it as a JSON object; fails the call otherwise. */
json_value *read_payload(void);

/* Writes "error: <reason>" to stderr and exits 1. */
_Noreturn void fail_call(const char *reason);

#endif
