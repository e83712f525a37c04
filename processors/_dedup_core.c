/* Compiled core of grouping's feature extraction (processors/dedup_text.py says what each feature is).
 *
 * The pure-Python functions in dedup_text.py are the reference: every function here returns exactly
 * what its Python twin returns (same values, and sets filled in the same order), which
 * tests/processors/test_dedup_native.py checks. Only the per-character loops live here; Unicode
 * normalisation stays in Python (unicodedata), where it is already compiled.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- CRC32 with zlib's polynomial and conventions (zlib.crc32 of the UTF-8 bytes) ---------------- */

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

/* Feeds the UTF-8 encoding of code point ``ch`` into a running (pre-inverted) CRC. */
static inline uint32_t crc_char(uint32_t crc, Py_UCS4 ch) {
    unsigned char b[4];
    int n;
    if (ch < 0x80) { b[0] = (unsigned char)ch; n = 1; }
    else if (ch < 0x800) { b[0] = 0xC0 | (ch >> 6); b[1] = 0x80 | (ch & 0x3F); n = 2; }
    else if (ch < 0x10000) { b[0] = 0xE0 | (ch >> 12); b[1] = 0x80 | ((ch >> 6) & 0x3F); b[2] = 0x80 | (ch & 0x3F); n = 3; }
    else { b[0] = 0xF0 | (ch >> 18); b[1] = 0x80 | ((ch >> 12) & 0x3F); b[2] = 0x80 | ((ch >> 6) & 0x3F);
           b[3] = 0x80 | (ch & 0x3F); n = 4; }
    for (int i = 0; i < n; i++) crc = crc_table[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
    return crc;
}

static uint32_t crc_chars(const Py_UCS4 *s, Py_ssize_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (Py_ssize_t i = 0; i < n; i++) crc = crc_char(crc, s[i]);
    return crc ^ 0xFFFFFFFFu;
}

/* ---- the word scan of dedup_text._WORD ------------------------------------------------------------
 * [가-힣]+ | [a-z]+\d*[a-z\d]* | \d+(?:[.,]\d+)*[가-힣a-z%㎞]{0,2}
 * The three alternatives start on disjoint characters and none can fail once started, so findall's
 * greedy first match is the simple maximal scan below; \d is Unicode Nd, as in re for str patterns. */

#define IS_HANGUL(c) ((c) >= 0xAC00 && (c) <= 0xD7A3)
#define IS_LOWER(c) ((c) >= 'a' && (c) <= 'z')
#define IS_DIGIT(c) Py_UNICODE_ISDECIMAL(c)
#define IS_UNIT(c) (IS_HANGUL(c) || IS_LOWER(c) || (c) == '%' || (c) == 0x338E)

/* End of the word starting at ``i`` (== i when no word starts there). */
static Py_ssize_t word_end(int kind, const void *data, Py_ssize_t len, Py_ssize_t i) {
    Py_UCS4 c = PyUnicode_READ(kind, data, i);
    Py_ssize_t j = i;
    if (IS_HANGUL(c)) {
        while (j < len && IS_HANGUL(PyUnicode_READ(kind, data, j))) j++;
    } else if (IS_LOWER(c)) {
        while (j < len) {
            Py_UCS4 d = PyUnicode_READ(kind, data, j);
            if (!(IS_LOWER(d) || IS_DIGIT(d))) break;
            j++;
        }
    } else if (IS_DIGIT(c)) {
        while (j < len && IS_DIGIT(PyUnicode_READ(kind, data, j))) j++;
        while (j + 1 < len) {
            Py_UCS4 sep = PyUnicode_READ(kind, data, j);
            if (!((sep == '.' || sep == ',') && IS_DIGIT(PyUnicode_READ(kind, data, j + 1)))) break;
            j += 2;
            while (j < len && IS_DIGIT(PyUnicode_READ(kind, data, j))) j++;
        }
        for (int k = 0; k < 2 && j < len && IS_UNIT(PyUnicode_READ(kind, data, j)); k++) j++;
    }
    return j;
}

/* ---- particle stems (dedup_text._PARTICLES, longest first, ties in list order) -------------------- */

static const char *const PARTICLES_UTF8[] = {
    "에서는", "으로는", "에서도", "에게서", "이라는", "이라고", "에서", "으로", "에게", "까지", "부터", "처럼",
    "보다", "라는", "라고", "하고", "에는", "와", "과", "은", "는", "이", "가", "을", "를", "의", "에", "도", "로",
    "만", "서"};
#define N_PARTICLES ((int)(sizeof PARTICLES_UTF8 / sizeof PARTICLES_UTF8[0]))
static Py_UCS4 particles[N_PARTICLES][4];
static int particle_len[N_PARTICLES];
static int particle_order[N_PARTICLES]; /* indices, longest first (stable) */

static int particles_init(void) {
    int at = 0;
    for (int i = 0; i < N_PARTICLES; i++) {
        PyObject *s = PyUnicode_FromString(PARTICLES_UTF8[i]);
        if (!s) return -1;
        Py_ssize_t n = PyUnicode_GET_LENGTH(s);
        if (n > 3) { Py_DECREF(s); PyErr_SetString(PyExc_ValueError, "particle too long"); return -1; }
        for (Py_ssize_t k = 0; k < n; k++) particles[i][k] = PyUnicode_READ_CHAR(s, k);
        particle_len[i] = (int)n;
        Py_DECREF(s);
    }
    for (int n = 3; n >= 1; n--)
        for (int i = 0; i < N_PARTICLES; i++)
            if (particle_len[i] == n) particle_order[at++] = i;
    return 0;
}

/* Length of the stem of a Hangul word (n when it has no particle to strip). */
static Py_ssize_t stem_len(const Py_UCS4 *w, Py_ssize_t n) {
    if (n < 3 || !IS_HANGUL(w[0])) return n;
    for (int o = 0; o < N_PARTICLES; o++) {
        int p = particle_order[o], pl = particle_len[p];
        if (n - pl < 2) continue;
        if (memcmp(w + n - pl, particles[p], pl * sizeof(Py_UCS4)) == 0) return n - pl;
    }
    return n;
}

static int add_hash(PyObject *set, uint32_t h) {
    PyObject *v = PyLong_FromUnsignedLong(h);
    if (!v) return -1;
    int rc = PySet_Add(set, v);
    Py_DECREF(v);
    return rc;
}

/* Feeds one word's hashes into the sets, in the order dedup_text.forms and .bigrams add them. */
static int word_hashes(const Py_UCS4 *w, Py_ssize_t n, PyObject *forms, PyObject *bigrams) {
    uint32_t h = crc_chars(w, n);
    if (add_hash(forms, h ? h : 1) < 0) return -1;
    Py_ssize_t sn = stem_len(w, n);
    if (sn != n) {
        uint32_t s = crc_chars(w, sn);
        if (add_hash(forms, s ? s : 1) < 0) return -1;
    }
    if (bigrams != NULL && n >= 3 && IS_HANGUL(w[0])) {
        for (Py_ssize_t i = 0; i + 1 < n; i++) {
            uint32_t b = crc_chars(w + i, 2) & 0xFFFF;
            if (add_hash(bigrams, b ? b : 1) < 0) return -1;
        }
    }
    return 0;
}

#define MAX_WORD 256 /* longer words are hashed from a heap copy */

static PyObject *word_features(PyObject *self, PyObject *args) {
    PyObject *text;
    int cut, want_bigrams;
    if (!PyArg_ParseTuple(args, "Upp", &text, &cut, &want_bigrams)) return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    PyObject *forms = PySet_New(NULL), *bigrams = want_bigrams ? PySet_New(NULL) : NULL;
    if (!forms || (want_bigrams && !bigrams)) goto fail;
    /* Find the last word first when it must be dropped (a truncated headline or snippet). */
    Py_ssize_t stop = len;
    if (cut) {
        Py_ssize_t last = -1;
        for (Py_ssize_t i = 0; i < len;) {
            Py_ssize_t j = word_end(kind, data, len, i);
            if (j > i) { last = i; i = j; } else i++;
        }
        if (last >= 0) stop = last;
    }
    Py_UCS4 local[MAX_WORD];
    for (Py_ssize_t i = 0; i < stop;) {
        Py_ssize_t j = word_end(kind, data, len, i);
        if (j == i) { i++; continue; }
        Py_ssize_t n = j - i;
        Py_UCS4 first = PyUnicode_READ(kind, data, i);
        if (!(n == 1 && IS_HANGUL(first))) {
            Py_UCS4 *w = n <= MAX_WORD ? local : PyMem_Malloc(n * sizeof(Py_UCS4));
            if (!w) { PyErr_NoMemory(); goto fail; }
            for (Py_ssize_t k = 0; k < n; k++) w[k] = PyUnicode_READ(kind, data, i + k);
            int rc = word_hashes(w, n, forms, bigrams);
            if (w != local) PyMem_Free(w);
            if (rc < 0) goto fail;
        }
        i = j;
    }
    PyObject *out = PyTuple_Pack(2, forms, bigrams ? bigrams : Py_None);
    Py_DECREF(forms);
    Py_XDECREF(bigrams);
    return out;
fail:
    Py_XDECREF(forms);
    Py_XDECREF(bigrams);
    return NULL;
}

/* ---- shingle hashes (dedup_text.shingle_hashes) --------------------------------------------------- */

static inline int keep_unit(Py_UCS4 c) {
    return (c >= 0xAC00 && c < 0xD7A4) || (c >= 0x30 && c < 0x3A) || (c >= 0x41 && c < 0x5B) ||
           (c >= 0x61 && c < 0x7B) || (c >= 0x4E00 && c < 0xA000);
}

static void radix_sort(uint32_t *a, uint32_t *tmp, Py_ssize_t n) {
    for (int shift = 0; shift < 32; shift += 8) {
        Py_ssize_t count[257] = {0};
        for (Py_ssize_t i = 0; i < n; i++) count[((a[i] >> shift) & 0xFF) + 1]++;
        for (int b = 0; b < 256; b++) count[b + 1] += count[b];
        for (Py_ssize_t i = 0; i < n; i++) tmp[count[(a[i] >> shift) & 0xFF]++] = a[i];
        uint32_t *t = a; a = tmp; tmp = t;
    }
    /* four passes: the sorted values are back in the first buffer */
}

static PyObject *shingle_hashes(PyObject *self, PyObject *args) {
    PyObject *text;
    if (!PyArg_ParseTuple(args, "U", &text)) return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    /* Non-BMP characters are surrogate pairs in UTF-16: never kept, like lone surrogates. */
    uint16_t *codes = PyMem_Malloc((len + 1) * sizeof(uint16_t));
    if (!codes) return PyErr_NoMemory();
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (keep_unit(c)) codes[m++] = (uint16_t)(c >= 0x41 && c < 0x5B ? c + 0x20 : c);
    }
    Py_ssize_t count = m - 8 + 1;
    if (count <= 0) { PyMem_Free(codes); return PyByteArray_FromStringAndSize(NULL, 0); }
    uint32_t *out = PyMem_Malloc(2 * count * sizeof(uint32_t));
    if (!out) { PyMem_Free(codes); return PyErr_NoMemory(); }
    const uint64_t mix1 = 0x9E3779B97F4A7C15ull, mix2 = 0xC2B2AE3D27D4EB4Full;
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t q0 = 0, q4 = 0;
        for (int k = 3; k >= 0; k--) {
            q0 = (q0 << 16) | codes[i + k];
            q4 = (q4 << 16) | codes[i + 4 + k];
        }
        uint64_t h = (q0 * mix1) ^ (q4 * mix2);
        h ^= h >> 29;
        h *= mix1;
        out[i] = (uint32_t)(h >> 32);
    }
    PyMem_Free(codes);
    radix_sort(out, out + count, count);
    Py_ssize_t d = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        if (i == 0 || out[i] != out[d - 1]) out[d++] = out[i];
    PyObject *res = PyByteArray_FromStringAndSize((const char *)out, d * sizeof(uint32_t));
    PyMem_Free(out);
    return res;
}

/* ---- module --------------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"word_features", word_features, METH_VARARGS,
     "word_features(normalised_text, cut, bigrams) -> (forms, bigrams or None): dedup_text.forms/bigrams "
     "of dedup_text.words(text, cut), for text already NFKC-normalised and lower-cased."},
    {"shingle_hashes", shingle_hashes, METH_VARARGS,
     "shingle_hashes(text) -> bytearray of sorted distinct uint32: dedup_text.shingle_hashes."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dedup_core",
                                    "Compiled twins of grouping's hot functions.", -1, methods};

PyMODINIT_FUNC PyInit__dedup_core(void) {
    crc_init();
    if (particles_init() < 0) return NULL;
    return PyModule_Create(&module);
}
