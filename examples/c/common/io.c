#include "io.h"

#include <stdio.h>
#include <stdlib.h>

_Noreturn void fail_call(const char *reason) {
    fprintf(stderr, "error: %s\n", reason);
    exit(1);
}

json_value *read_payload(void) {
    size_t length = 0, capacity = 1 << 16;
    char *input = malloc(capacity);
    if (!input) fail_call("out of memory");
    for (;;) {
        if (length + 1 == capacity) {
            capacity *= 2;
            char *grown = realloc(input, capacity);
            if (!grown) fail_call("out of memory");
            input = grown;
        }
        size_t got = fread(input + length, 1, capacity - length - 1, stdin);
        if (got == 0) break;
        length += got;
    }
    input[length] = '\0';
    const char *error = NULL;
    json_value *payload = json_parse(input, &error);
    if (!payload) {
        fprintf(stderr, "error: the payload on stdin is not JSON: %s\n", error);
        exit(1);
    }
    if (payload->kind != JSON_OBJECT) fail_call("the payload on stdin is not a JSON object");
    return payload;
}
