/* report_jscan.h — a JSON line as a flat array of tokens, without building
 * a tree: the first pass of `armo report` reads every line of a scores file
 * (100 000 records: ~330 MB, 57 numbers per response), and jansson's tree
 * of objects, hash tables and allocations was most of its time.  Strict
 * JSON grammar (RFC 8259; UTF-8 inside strings is not checked), nesting at
 * most 64 deep.  Strings stay raw (escapes decoded on demand). */
#ifndef ARMO_REPORT_JSCAN_H
#define ARMO_REPORT_JSCAN_H

#include <stddef.h>
#include <stdint.h>

enum { ARMO_JS_OBJECT = 1, ARMO_JS_ARRAY, ARMO_JS_STRING, ARMO_JS_NUMBER, ARMO_JS_TRUE,
       ARMO_JS_FALSE, ARMO_JS_NULL };

typedef struct {
    uint8_t type;
    uint8_t is_int; /* a number without fraction or exponent */
    int32_t a, b;   /* bytes [a, b) of the text: a string's inside, without the quotes */
    int32_t next;   /* the token after this one and everything inside it */
} armo_jtok;

typedef struct {
    const char *text;
    armo_jtok *t;
    int n, cap;
    char err[96]; /* why the last parse failed */
} armo_jscan;

/* Tokenizes text[0..len); 0, or -1 with j->err set (not JSON, or no memory).
 * Token 0 is the top-level value. */
int armo_jscan_parse(armo_jscan *j, const char *text, size_t len);
void armo_jscan_free(armo_jscan *j);

/* The value of key in object token obj (the last one when the key repeats,
 * as in jansson), or -1 (also when obj is not an object). */
int armo_jscan_get(const armo_jscan *j, int obj, const char *key);

/* The i-th member of an object (its key token; the value follows it) or
 * element of an array, or -1. */
int armo_jscan_child(const armo_jscan *j, int tok, int i);

/* Number of members / elements of an object / array (0 otherwise). */
int armo_jscan_size(const armo_jscan *j, int tok);

double armo_jscan_number(const armo_jscan *j, int tok);
long long armo_jscan_integer(const armo_jscan *j, int tok);

/* A string token decoded into buf (cut to len - 1 bytes); -1 when tok is
 * not a string. */
int armo_jscan_string(const armo_jscan *j, int tok, char *buf, size_t len);

#endif
