/* A small JSON reader and writer for the C examples: the whole document is parsed into a
 * tree of json_value nodes allocated with malloc and never freed (a hook call is one short
 * process). wasi-libc has no JSON library, and the examples must build from Debian's
 * packages alone. */
#ifndef WASMHOOK_JSON_H
#define WASMHOOK_JSON_H

#include <stddef.h>
#include <stdio.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_kind;

typedef struct json_value json_value;

struct json_value {
    json_kind kind;
    int boolean;
    /* A number keeps its text as written (so ids and limits round-trip exactly); a string
     * its decoded UTF-8 bytes. */
    char *text;
    /* Array items or object values, in document order; keys[i] names items[i] in an object. */
    size_t count;
    json_value **items;
    char **keys;
};

/* Parses `input` (NUL-terminated). Returns NULL and sets *error when it is not one JSON
 * value. */
json_value *json_parse(const char *input, const char **error);

/* The member `key` of an object, or NULL when `object` is not an object or has no such key. */
json_value *json_get(const json_value *object, const char *key);

/* The text of a string value, or NULL when `value` is NULL or not a string. */
const char *json_string(const json_value *value);

/* Writes `text` as a JSON string literal. */
void json_write_string(FILE *out, const char *text);

/* Writes `value` as JSON. */
void json_write(FILE *out, const json_value *value);

#endif
