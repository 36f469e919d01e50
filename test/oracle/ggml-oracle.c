/* A tiny command-line oracle over the ggml that node-llama-cpp ships (libggml-base.so).
 * It exists only for tests: our TypeScript quantizers must produce the same bytes as ggml.
 *
 *   ggml-oracle quantize   TYPE N_PER_ROW  < f32 values      > quantized bytes  (ggml_quantize_chunk, no imatrix)
 *   ggml-oracle dequantize TYPE N_TOTAL    < quantized bytes > f32 values       (type traits to_float)
 *   ggml-oracle row-size   TYPE N_PER_ROW                    > decimal bytes per row
 *
 * The few prototypes we need are declared here by hand (the ABI of ggml.h for this version), so the
 * harness builds with nothing but gcc and the shipped .so. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*to_float_fn)(const void *x, float *y, int64_t k);
typedef void (*from_float_fn)(const float *x, void *y, int64_t k);

struct ggml_type_traits {
    const char *type_name;
    int64_t blck_size;
    int64_t blck_size_interleave;
    size_t type_size;
    bool is_quantized;
    to_float_fn to_float;
    from_float_fn from_float_ref;
};

extern size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                                  int64_t n_per_row, const float *imatrix);
extern const struct ggml_type_traits *ggml_get_type_traits(int type);
extern size_t ggml_row_size(int type, int64_t ne);

static unsigned char *read_all(size_t *len) {
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (n == cap) { cap *= 2; buf = realloc(buf, cap); }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        if (got == 0) break;
        n += got;
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: ggml-oracle quantize|dequantize|row-size TYPE N\n"); return 2; }
    const char *mode = argv[1];
    const int type = atoi(argv[2]);
    const int64_t n = atoll(argv[3]);
    const struct ggml_type_traits *tr = ggml_get_type_traits(type);

    if (strcmp(mode, "row-size") == 0) {
        printf("%zu\n", ggml_row_size(type, n));
        return 0;
    }
    size_t len;
    unsigned char *in = read_all(&len);
    if (strcmp(mode, "quantize") == 0) {
        if (len % (sizeof(float) * n) != 0) { fprintf(stderr, "input is not whole rows\n"); return 1; }
        const int64_t nrows = (int64_t)(len / (sizeof(float) * n));
        const size_t out_len = ggml_row_size(type, n) * nrows;
        void *out = calloc(out_len ? out_len : 1, 1);
        const size_t wrote = ggml_quantize_chunk(type, (const float *)in, out, 0, nrows, n, NULL);
        fwrite(out, 1, wrote, stdout);
        return 0;
    }
    if (strcmp(mode, "dequantize") == 0) {
        if (type == 0) { fwrite(in, sizeof(float), n, stdout); return 0; } /* F32 has no to_float: it is the identity */
        if (!tr->to_float) { fprintf(stderr, "type %d has no to_float\n", type); return 1; }
        float *out = malloc(sizeof(float) * (n ? n : 1));
        tr->to_float(in, out, n);
        fwrite(out, sizeof(float), n, stdout);
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
