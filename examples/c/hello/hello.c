/* hello: answers every event with a greeting (see conformance/README.md).
 *
 * A WASI command (clang --target=wasm32-wasi): the hook payload on stdin, the response on
 * stdout, log lines on stderr, exit status 1 with the reason on stderr when the call fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "json.h"

int main(void) {
    json_value *payload = read_payload();
    const char *greeting = json_string(json_get(json_get(payload, "settings"), "greeting"));
    if (!greeting) greeting = "Hello";
    const char *event = json_string(json_get(payload, "event"));
    const char *action = json_string(json_get(payload, "action"));

    fprintf(stderr, "%s\n", greeting);

    if (!event) event = "";
    if (!action) action = "";
    size_t size = strlen(greeting) + strlen(event) + strlen(action) + sizeof ", .!";
    char *content = malloc(size);
    if (!content) fail_call("out of memory");
    snprintf(content, size, "%s, %s.%s!", greeting, event, action);
    fputs("{\"messages\":[{\"type\":\"info\",\"content\":", stdout);
    json_write_string(stdout, content);
    fputs("}],\"operations\":[]}", stdout);
    return 0;
}
