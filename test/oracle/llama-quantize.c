/* Test-only: runs llama.cpp's own quantizer (llama_model_quantize in the libllama that node-llama-cpp
 * ships) so tests can compare our per-tensor type choices and bytes with llama-quantize's.
 *
 *   llama-quantize-oracle IN.gguf OUT.gguf FTYPE     (FTYPE: the llama_ftype number, e.g. 15 = Q4_K_M)
 *
 * The params struct is declared here by hand, field for field as include/llama.h of this version has
 * it; we only ever take it from llama_model_quantize_default_params() and change ftype and nthread. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct llama_model_quantize_params {
    int32_t nthread;
    int ftype;                    /* enum llama_ftype */
    int output_tensor_type;       /* enum ggml_type */
    int token_embedding_type;     /* enum ggml_type */
    bool allow_requantize;
    bool quantize_output_tensor;
    bool only_copy;
    bool pure;
    bool keep_split;
    bool dry_run;
    const void *imatrix;
    const void *kv_overrides;
    const void *tt_overrides;
    const int32_t *prune_layers;
    size_t max_buf_size;
} llama_model_quantize_params;

extern llama_model_quantize_params llama_model_quantize_default_params(void);
extern uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const llama_model_quantize_params *params);
extern void llama_backend_init(void);
extern void llama_log_set(void (*cb)(int level, const char *text, void *user), void *user);

static void quiet(int level, const char *text, void *user) {
    (void)user;
    if (level == 4 /* GGML_LOG_LEVEL_ERROR: keep only errors */) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: llama-quantize-oracle IN OUT FTYPE\n"); return 2; }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    llama_model_quantize_params p = llama_model_quantize_default_params();
    p.ftype = atoi(argv[3]);
    p.nthread = 1;
    const uint32_t rc = llama_model_quantize(argv[1], argv[2], &p);
    if (rc != 0) fprintf(stderr, "llama_model_quantize failed (%u)\n", rc);
    return rc == 0 ? 0 : 1;
}
