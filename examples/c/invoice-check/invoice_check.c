/* invoice-check: validates an invoice annotation (see conformance/README.md).
 *
 * Required fields must have a value, amount_total must be a number no greater than
 * max_total, and the currency code is trimmed and upper-cased. A WASI command
 * (clang --target=wasm32-wasi): the hook payload on stdin, the response on stdout, log lines
 * on stderr, exit status 1 with the reason on stderr when the call fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "json.h"

typedef struct {
    json_value **items;
    size_t count, capacity;
} datapoints;

/* Walks the tree depth first, in order, collecting datapoints. */
static void collect(const json_value *nodes, datapoints *out) {
    if (!nodes || nodes->kind != JSON_ARRAY) fail_call("annotation.content (or a node's children) is not a list");
    for (size_t i = 0; i < nodes->count; i++) {
        json_value *node = nodes->items[i];
        json_value *children = json_get(node, "children");
        const char *category = json_string(json_get(node, "category"));
        if (children) {
            collect(children, out);
        } else if (category && strcmp(category, "datapoint") == 0) {
            if (out->count == out->capacity) {
                out->capacity = out->capacity ? out->capacity * 2 : 16;
                out->items = realloc(out->items, out->capacity * sizeof *out->items);
                if (!out->items) fail_call("out of memory");
            }
            out->items[out->count++] = node;
        }
    }
}

static const char *schema_id_of(const json_value *datapoint) {
    return json_string(json_get(datapoint, "schema_id"));
}

static const char *value_of(const json_value *datapoint) {
    return json_string(json_get(json_get(datapoint, "content"), "value"));
}

static json_value *find(const datapoints *all, const char *schema_id) {
    for (size_t i = 0; i < all->count; i++) {
        const char *id = schema_id_of(all->items[i]);
        if (id && strcmp(id, schema_id) == 0) return all->items[i];
    }
    return NULL;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_blank(const char *text) {
    for (; *text; text++)
        if (!is_space(*text)) return 0;
    return 1;
}

static int all_digits(const char *start, const char *end) {
    if (start == end) return 0;
    for (const char *c = start; c < end; c++)
        if (*c < '0' || *c > '9') return 0;
    return 1;
}

/* -?[0-9]+(\.[0-9]+)? */
static int is_number(const char *text) {
    const char *digits = *text == '-' ? text + 1 : text;
    const char *dot = strchr(digits, '.');
    const char *end = digits + strlen(digits);
    if (!dot) return all_digits(digits, end);
    return all_digits(digits, dot) && all_digits(dot + 1, end);
}

/* Compares two strings of decimal digits without leading zeros as numbers. */
static int compare_digits(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) return la < lb ? -1 : 1;
    int order = strcmp(a, b);
    return (order > 0) - (order < 0);
}

static const char *skip_zeros(const char *text) {
    while (*text == '0') text++;
    return text;
}

/* Whether `number` (as is_number accepts) is greater than the integer `max` (JSON integer
 * text), exactly: by comparing digit strings, so no size of either overflows. */
static int exceeds(const char *number, const char *max) {
    int negative = *number == '-';
    int max_negative = *max == '-';
    const char *magnitude = negative ? number + 1 : number;
    char *whole = strdup(magnitude);
    if (!whole) fail_call("out of memory");
    char *dot = strchr(whole, '.');
    int fractional = 0;
    if (dot) {
        *dot = '\0';
        for (const char *c = dot + 1; *c; c++)
            if (*c != '0') fractional = 1;
    }
    const char *int_part = skip_zeros(whole);
    const char *max_part = skip_zeros(max_negative ? max + 1 : max);
    int is_zero = *int_part == '\0' && !fractional;
    int result;
    if (is_zero) {
        /* 0 > max  <=>  max is negative (and not -0). */
        result = max_negative && *max_part != '\0';
    } else if (!negative && max_negative) {
        result = 1;
    } else if (negative && !max_negative) {
        result = 0;
    } else if (!negative) {
        int order = compare_digits(int_part, max_part);
        result = order > 0 || (order == 0 && fractional);
    } else {
        /* -(int + f) > -m  <=>  int + f < m  <=>  int < m, for 0 <= f < 1. */
        result = compare_digits(int_part, max_part) < 0;
    }
    free(whole);
    return result;
}

/* Writes one message; `id` may be NULL. */
static void write_message(int *first, const char *type, const char *content, const json_value *id) {
    if (!*first) fputc(',', stdout);
    *first = 0;
    fputs("{\"type\":", stdout);
    json_write_string(stdout, type);
    fputs(",\"content\":", stdout);
    json_write_string(stdout, content);
    if (id) {
        fputs(",\"id\":", stdout);
        json_write(stdout, id);
    }
    fputc('}', stdout);
}

static int is_integer_text(const char *text) {
    return all_digits(*text == '-' ? text + 1 : text, text + strlen(text));
}

int main(void) {
    json_value *payload = read_payload();
    json_value *settings = json_get(payload, "settings");
    json_value *content = json_get(json_get(payload, "annotation"), "content");
    if (!content || content->kind == JSON_NULL) fail_call("the payload has no annotation.content");
    datapoints all = {0};
    collect(content, &all);

    /* The response is written as it is found: messages in the order the specification
     * gives, then operations in tree order. */
    int first = 1;
    fputs("{\"messages\":[", stdout);

    json_value *required = json_get(settings, "required");
    for (size_t i = 0; required && required->kind == JSON_ARRAY && i < required->count; i++) {
        const char *schema_id = json_string(required->items[i]);
        if (!schema_id) continue;
        char *message = malloc(strlen(schema_id) + sizeof " is required");
        if (!message) fail_call("out of memory");
        sprintf(message, "%s is required", schema_id);
        json_value *found = find(&all, schema_id);
        if (!found) {
            write_message(&first, "error", message, NULL);
        } else {
            const char *value = value_of(found);
            if (!value || is_blank(value)) write_message(&first, "error", message, json_get(found, "id"));
        }
        free(message);
    }

    json_value *max_total = json_get(settings, "max_total");
    json_value *total = find(&all, "amount_total");
    if (max_total && max_total->kind == JSON_NUMBER && is_integer_text(max_total->text) && total) {
        const char *value = value_of(total);
        if (!value) value = "";
        char *normalized = malloc(strlen(value) + 1);
        if (!normalized) fail_call("out of memory");
        size_t length = 0;
        for (const char *c = value; *c; c++)
            if (*c != ' ') normalized[length++] = *c == ',' ? '.' : *c;
        normalized[length] = '\0';
        if (!is_number(normalized)) {
            write_message(&first, "error", "amount_total is not a number", json_get(total, "id"));
        } else if (exceeds(normalized, max_total->text)) {
            char *message = malloc(strlen(max_total->text) + sizeof "amount_total exceeds ");
            if (!message) fail_call("out of memory");
            sprintf(message, "amount_total exceeds %s", max_total->text);
            write_message(&first, "warning", message, json_get(total, "id"));
            free(message);
        }
        free(normalized);
    }

    fputs("],\"operations\":[", stdout);
    const char *currency_field = json_string(json_get(settings, "currency_field"));
    first = 1;
    for (size_t i = 0; currency_field && i < all.count; i++) {
        const char *schema_id = schema_id_of(all.items[i]);
        const char *value = value_of(all.items[i]);
        if (!schema_id || strcmp(schema_id, currency_field) != 0 || !value) continue;
        const char *start = value;
        const char *end = value + strlen(value);
        while (start < end && is_space(*start)) start++;
        while (end > start && is_space(end[-1])) end--;
        char *normalized = malloc((size_t)(end - start) + 1);
        if (!normalized) fail_call("out of memory");
        for (size_t j = 0; start + j < end; j++) {
            char c = start[j];
            normalized[j] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
        }
        normalized[end - start] = '\0';
        if (strcmp(normalized, value) != 0) {
            if (!first) fputc(',', stdout);
            first = 0;
            fputs("{\"op\":\"replace\",\"id\":", stdout);
            json_value *id = json_get(all.items[i], "id");
            if (id) json_write(stdout, id);
            else fputs("null", stdout);
            fputs(",\"value\":{\"content\":{\"value\":", stdout);
            json_write_string(stdout, normalized);
            fputs("}}}", stdout);
        }
        free(normalized);
    }
    fputs("]}", stdout);
    fprintf(stderr, "checked %zu datapoints\n", all.count);
    return 0;
}
