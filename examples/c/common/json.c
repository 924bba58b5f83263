#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *at;
    const char *error;
} parser;

static json_value *parse_value(parser *p, int depth);

/* Deeper nesting is refused rather than risking the stack. */
#define MAX_DEPTH 512

static void *allocate(size_t size) {
    void *memory = calloc(1, size ? size : 1);
    if (!memory) {
        fputs("error: out of memory\n", stderr);
        exit(1);
    }
    return memory;
}

static void skip_space(parser *p) {
    while (*p->at == ' ' || *p->at == '\t' || *p->at == '\n' || *p->at == '\r') p->at++;
}

static json_value *fail(parser *p, const char *error) {
    if (!p->error) p->error = error;
    return NULL;
}

static json_value *make(json_kind kind) {
    json_value *value = allocate(sizeof *value);
    value->kind = kind;
    return value;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser *p, uint32_t *out) {
    uint32_t code = 0;
    for (int i = 0; i < 4; i++) {
        int digit = hex_digit(p->at[i]);
        if (digit < 0) return 0;
        code = code * 16 + (uint32_t)digit;
    }
    p->at += 4;
    *out = code;
    return 1;
}

static size_t put_utf8(char *out, uint32_t code) {
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | (code >> 12));
        out[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (code >> 18));
    out[1] = (char)(0x80 | ((code >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((code >> 6) & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

/* Reads a string literal (p->at on the opening quote) into newly allocated UTF-8. */
static char *parse_string(parser *p) {
    p->at++;
    const char *start = p->at;
    /* Escapes never make the text longer than the literal. */
    size_t bound = 0;
    while (start[bound] && start[bound] != '"') bound += start[bound] == '\\' && start[bound + 1] ? 2 : 1;
    char *text = allocate(bound + 1);
    size_t length = 0;
    for (;;) {
        char c = *p->at;
        if (c == '"') {
            p->at++;
            text[length] = '\0';
            return text;
        }
        if (c == '\0' || (unsigned char)c < 0x20) {
            fail(p, "unterminated string or control character in a string");
            return NULL;
        }
        if (c != '\\') {
            text[length++] = c;
            p->at++;
            continue;
        }
        p->at++;
        char escape = *p->at++;
        switch (escape) {
        case '"': text[length++] = '"'; break;
        case '\\': text[length++] = '\\'; break;
        case '/': text[length++] = '/'; break;
        case 'b': text[length++] = '\b'; break;
        case 'f': text[length++] = '\f'; break;
        case 'n': text[length++] = '\n'; break;
        case 'r': text[length++] = '\r'; break;
        case 't': text[length++] = '\t'; break;
        case 'u': {
            uint32_t code;
            if (!read_hex4(p, &code)) {
                fail(p, "bad \\u escape");
                return NULL;
            }
            if (code >= 0xD800 && code < 0xDC00 && p->at[0] == '\\' && p->at[1] == 'u') {
                uint32_t low;
                p->at += 2;
                if (!read_hex4(p, &low) || low < 0xDC00 || low > 0xDFFF) {
                    fail(p, "bad surrogate pair");
                    return NULL;
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
            }
            length += put_utf8(text + length, code);
            break;
        }
        default:
            fail(p, "bad escape in a string");
            return NULL;
        }
    }
}

static json_value *parse_number(parser *p) {
    const char *start = p->at;
    if (*p->at == '-') p->at++;
    if (*p->at < '0' || *p->at > '9') return fail(p, "bad number");
    while (*p->at >= '0' && *p->at <= '9') p->at++;
    if (*p->at == '.') {
        p->at++;
        if (*p->at < '0' || *p->at > '9') return fail(p, "bad number");
        while (*p->at >= '0' && *p->at <= '9') p->at++;
    }
    if (*p->at == 'e' || *p->at == 'E') {
        p->at++;
        if (*p->at == '+' || *p->at == '-') p->at++;
        if (*p->at < '0' || *p->at > '9') return fail(p, "bad number");
        while (*p->at >= '0' && *p->at <= '9') p->at++;
    }
    json_value *value = make(JSON_NUMBER);
    size_t length = (size_t)(p->at - start);
    value->text = allocate(length + 1);
    memcpy(value->text, start, length);
    return value;
}

/* Appends to a growing array of pointers. */
static void push(void ***items, size_t *count, size_t *capacity, void *item) {
    if (*count == *capacity) {
        *capacity = *capacity ? *capacity * 2 : 4;
        void **grown = realloc(*items, *capacity * sizeof **items);
        if (!grown) {
            fputs("error: out of memory\n", stderr);
            exit(1);
        }
        *items = grown;
    }
    (*items)[(*count)++] = item;
}

static json_value *parse_container(parser *p, int depth, json_kind kind) {
    char close = kind == JSON_ARRAY ? ']' : '}';
    json_value *value = make(kind);
    size_t capacity = 0, key_capacity = 0, key_count = 0;
    p->at++;
    skip_space(p);
    if (*p->at == close) {
        p->at++;
        return value;
    }
    for (;;) {
        skip_space(p);
        if (kind == JSON_OBJECT) {
            if (*p->at != '"') return fail(p, "expected a key");
            char *key = parse_string(p);
            if (!key) return NULL;
            push((void ***)&value->keys, &key_count, &key_capacity, key);
            skip_space(p);
            if (*p->at != ':') return fail(p, "expected ':'");
            p->at++;
        }
        json_value *item = parse_value(p, depth + 1);
        if (!item) return NULL;
        push((void ***)&value->items, &value->count, &capacity, item);
        skip_space(p);
        if (*p->at == ',') {
            p->at++;
            continue;
        }
        if (*p->at == close) {
            p->at++;
            return value;
        }
        return fail(p, kind == JSON_ARRAY ? "expected ',' or ']'" : "expected ',' or '}'");
    }
}

static json_value *parse_value(parser *p, int depth) {
    if (depth > MAX_DEPTH) return fail(p, "nested too deeply");
    skip_space(p);
    switch (*p->at) {
    case '{': return parse_container(p, depth, JSON_OBJECT);
    case '[': return parse_container(p, depth, JSON_ARRAY);
    case '"': {
        char *text = parse_string(p);
        if (!text) return NULL;
        json_value *value = make(JSON_STRING);
        value->text = text;
        return value;
    }
    case 't':
    case 'f':
    case 'n': {
        static const struct { const char *word; json_kind kind; int boolean; } words[] = {
            {"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
            size_t length = strlen(words[i].word);
            if (strncmp(p->at, words[i].word, length) == 0) {
                p->at += length;
                json_value *value = make(words[i].kind);
                value->boolean = words[i].boolean;
                return value;
            }
        }
        return fail(p, "unexpected word");
    }
    default: return parse_number(p);
    }
}

json_value *json_parse(const char *input, const char **error) {
    parser p = {input, NULL};
    json_value *value = parse_value(&p, 0);
    if (value) {
        skip_space(&p);
        if (*p.at) value = fail(&p, "text after the value");
    }
    if (!value && error) *error = p.error ? p.error : "not JSON";
    return value;
}

json_value *json_get(const json_value *object, const char *key) {
    if (!object || object->kind != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < object->count; i++)
        if (strcmp(object->keys[i], key) == 0) return object->items[i];
    return NULL;
}

const char *json_string(const json_value *value) {
    return value && value->kind == JSON_STRING ? value->text : NULL;
}

void json_write_string(FILE *out, const char *text) {
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        switch (*c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*c < 0x20) fprintf(out, "\\u%04x", *c);
            else fputc(*c, out);
        }
    }
    fputc('"', out);
}

void json_write(FILE *out, const json_value *value) {
    switch (value->kind) {
    case JSON_NULL: fputs("null", out); break;
    case JSON_BOOL: fputs(value->boolean ? "true" : "false", out); break;
    case JSON_NUMBER: fputs(value->text, out); break;
    case JSON_STRING: json_write_string(out, value->text); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        fputc(value->kind == JSON_ARRAY ? '[' : '{', out);
        for (size_t i = 0; i < value->count; i++) {
            if (i) fputc(',', out);
            if (value->kind == JSON_OBJECT) {
                json_write_string(out, value->keys[i]);
                fputc(':', out);
            }
            json_write(out, value->items[i]);
        }
        fputc(value->kind == JSON_ARRAY ? ']' : '}', out);
        break;
    }
}
