/* Compiled core of grouping (processors/dedup_text.py says what each feature is, dedup_index.py how the
 * index stores them, dedup.py how a story is chosen).
 *
 * The pure-Python functions are the reference: every function here returns exactly what its Python twin
 * returns (same values, sets filled in the same order, the same story for every article), which
 * tests/processors/test_dedup_native.py and test_dedup_tables.py check. Here live the per-character loops
 * (word and shingle hashes), the index's lookups, insertions and merges, and the whole decision for a full
 * text whose candidates are all full texts (place_full); Unicode normalisation stays in Python
 * (unicodedata), where it is already compiled, and so does every decision that needs the headline model.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

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
    Py_UCS4 last = w[n - 1];
    for (int o = 0; o < N_PARTICLES; o++) {
        int p = particle_order[o], pl = particle_len[p];
        if (particles[p][pl - 1] != last || n - pl < 2) continue; /* the last character first: it rarely matches */
        if (memcmp(w + n - pl, particles[p], pl * sizeof(Py_UCS4)) == 0) return n - pl;
    }
    return n;
}

static void sort_u32(uint32_t *a, Py_ssize_t n);

/* A set of hashes being filled, and the same hashes in an array (room for every one added). */
typedef struct { PyObject *set; uint32_t *all; Py_ssize_t n; } Hashes;

static int add_hash(Hashes *to, uint32_t h) {
    PyObject *v = PyLong_FromUnsignedLong(h);
    if (!v) return -1;
    int rc = PySet_Add(to->set, v);
    Py_DECREF(v);
    to->all[to->n++] = h;
    return rc;
}

/* The distinct hashes of ``to``, ascending, as uint32 bytes. */
static PyObject *sorted_bytes(Hashes *to) {
    sort_u32(to->all, to->n);
    Py_ssize_t d = 0;
    for (Py_ssize_t i = 0; i < to->n; i++)
        if (d == 0 || to->all[i] != to->all[d - 1]) to->all[d++] = to->all[i];
    return PyBytes_FromStringAndSize((const char *)to->all, d * (Py_ssize_t)sizeof(uint32_t));
}

/* Feeds one word's hashes into the sets, in the order dedup_text.forms and .bigrams add them. */
static int word_hashes(const Py_UCS4 *w, Py_ssize_t n, Hashes *forms, Hashes *bigrams) {
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

/* dedup_text.word_features, native: (forms, bigrams or None, forms sorted, bigrams sorted or None), the sorted
 * ones as uint32 bytes of distinct hashes: what place_full and index_add read, so that they need not read the
 * sets back and sort them. */
static PyObject *word_features(PyObject *self, PyObject *args) {
    PyObject *text;
    int cut, want_bigrams;
    if (!PyArg_ParseTuple(args, "Upp", &text, &cut, &want_bigrams)) return NULL;
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    PyObject *out = NULL, *forms_sorted = NULL, *bigrams_sorted = NULL;
    /* A word gives at most two forms and its length less one bigrams. */
    Hashes forms = {PySet_New(NULL), PyMem_Malloc((2 * len + 1) * sizeof(uint32_t)), 0};
    Hashes bigrams = {NULL, NULL, 0};
    if (want_bigrams) bigrams = (Hashes){PySet_New(NULL), PyMem_Malloc((len + 1) * sizeof(uint32_t)), 0};
    if (!forms.set || (want_bigrams && !bigrams.set)) goto done;
    if (!forms.all || (want_bigrams && !bigrams.all)) { PyErr_NoMemory(); goto done; }
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
            if (!w) { PyErr_NoMemory(); goto done; }
            for (Py_ssize_t k = 0; k < n; k++) w[k] = PyUnicode_READ(kind, data, i + k);
            int rc = word_hashes(w, n, &forms, want_bigrams ? &bigrams : NULL);
            if (w != local) PyMem_Free(w);
            if (rc < 0) goto done;
        }
        i = j;
    }
    forms_sorted = sorted_bytes(&forms);
    bigrams_sorted = want_bigrams ? sorted_bytes(&bigrams) : Py_NewRef(Py_None);
    if (forms_sorted && bigrams_sorted)
        out = PyTuple_Pack(4, forms.set, want_bigrams ? bigrams.set : Py_None, forms_sorted, bigrams_sorted);
done:
    Py_XDECREF(forms.set);
    Py_XDECREF(bigrams.set);
    Py_XDECREF(forms_sorted);
    Py_XDECREF(bigrams_sorted);
    PyMem_Free(forms.all);
    PyMem_Free(bigrams.all);
    return out;
}

/* ---- shingle hashes (dedup_text.shingle_hashes) --------------------------------------------------- */

static inline int keep_unit(Py_UCS4 c) {
    return (c >= 0xAC00 && c < 0xD7A4) || (c >= 0x30 && c < 0x3A) || (c >= 0x41 && c < 0x5B) ||
           (c >= 0x61 && c < 0x7B) || (c >= 0x4E00 && c < 0xA000);
}

static int u32_cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts ascending: insertion sort for the few dozen hashes of one article (glibc's qsort allocates a
 * buffer and calls back per comparison), qsort beyond. */
static void sort_u32(uint32_t *a, Py_ssize_t n) {
    if (n > 64) { qsort(a, n, sizeof(uint32_t), u32_cmp); return; }
    for (Py_ssize_t i = 1; i < n; i++) {
        uint32_t v = a[i];
        Py_ssize_t j = i;
        for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
        a[j] = v;
    }
}

/* Each BMP code point's unit in shingles (A-Z folded), 0 when it is not kept (see keep_unit). */
static uint16_t unit_map[1 << 16];

static void unit_map_init(void) {
    for (Py_UCS4 c = 1; c < (1 << 16); c++)
        if (keep_unit(c)) unit_map[c] = (uint16_t)(c >= 0x41 && c < 0x5B ? c + 0x20 : c);
}

/* The UTF-16 code units kept in shingles, A-Z folded; non-BMP characters (surrogate pairs in UTF-16)
 * and lone surrogates are never kept. Returns how many. */
static Py_ssize_t kept_units(PyObject *text, uint16_t *codes) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t len = PyUnicode_GET_LENGTH(text), m = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *d = data;
        for (Py_ssize_t i = 0; i < len; i++) { uint16_t u = unit_map[d[i]]; codes[m] = u; m += u != 0; }
    } else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *d = data;
        for (Py_ssize_t i = 0; i < len; i++) { uint16_t u = unit_map[d[i]]; codes[m] = u; m += u != 0; }
    } else {
        const Py_UCS4 *d = data;
        for (Py_ssize_t i = 0; i < len; i++) {
            uint16_t u = d[i] < (1 << 16) ? unit_map[d[i]] : 0;
            codes[m] = u;
            m += u != 0;
        }
    }
    return m;
}

/* keep_distinct's table of the values seen, kept all zero between calls (the GIL is held throughout); big enough
 * for texts of ~16,000 characters, longer ones get a table of their own for the call. */
#define SEEN_KEPT (1 << 17)
static uint32_t seen_kept[SEEN_KEPT];

/* Keeps the first of each value of ``h[0..n)``, in place and in order; returns how many are kept. The kept values
 * at most ``limit`` are also written to ``low`` (``*nlow`` of them): the candidates for the sketch pool. */
static Py_ssize_t keep_distinct(uint32_t *h, Py_ssize_t n, uint32_t limit, uint32_t *low, Py_ssize_t *nlow) {
    Py_ssize_t size = 16;
    while (size < 8 * n) size <<= 1; /* mostly empty: a probe rarely meets another value */
    uint32_t *seen_table = size <= SEEN_KEPT ? seen_kept : PyMem_Calloc(size, sizeof(uint32_t));
    if (!seen_table) return -1;
    uint32_t mask = (uint32_t)(size - 1);
    Py_ssize_t d = 0, c = 0;
    int zero = 0; /* 0 marks an empty entry, so the value 0 is tracked apart */
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t v = h[i];
        if (v == 0) { if (!zero) { zero = 1; h[d++] = 0; low[c++] = 0; } continue; }
        uint32_t at = (v ^ (v >> 16)) & mask;
        while (seen_table[at] && seen_table[at] != v) at = (at + 1) & mask;
        if (!seen_table[at]) {
            seen_table[at] = v;
            h[d++] = v;
            if (v <= limit) low[c++] = v;
        }
    }
    if (seen_table == seen_kept) memset(seen_table, 0, size * sizeof(uint32_t));
    else PyMem_Free(seen_table);
    *nlow = c;
    return d;
}

/* The threshold below which about 1.5 * ``want`` of ``n`` uniform hashes fall (all of them for few hashes). */
static uint32_t pool_limit(Py_ssize_t n, Py_ssize_t want) {
    uint64_t limit = n <= 2 * want ? UINT32_MAX : ((uint64_t)(3 * want) << 31) / (uint64_t)n;
    return limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit;
}

/* The ``want`` smallest of ``n`` distinct hashes (or all of them), ascending, into ``out``; returns how
 * many. ``low`` holds the ``nlow`` of them found at most ``pool_limit(n0, want)`` for some n0 >= n: if they are
 * enough, only they are sorted; else those below a doubled threshold are gathered again until enough pass. */
static Py_ssize_t smallest(const uint32_t *h, Py_ssize_t n, Py_ssize_t want, uint32_t *out, uint32_t *low,
                           Py_ssize_t nlow, uint64_t limit) {
    Py_ssize_t take = n < want ? n : want;
    if (take <= 0) return 0;
    for (Py_ssize_t c = nlow;;) {
        if (c >= take) {
            sort_u32(low, c);
            memcpy(out, low, take * sizeof(uint32_t));
            return take;
        }
        limit = limit >= UINT32_MAX / 2 ? UINT32_MAX : 2 * limit + 1;
        c = 0;
        for (Py_ssize_t i = 0; i < n; i++) if (h[i] <= limit) low[c++] = h[i];
    }
}

static PyObject *shingles(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t want;
    if (!PyArg_ParseTuple(args, "Un", &text, &want)) return NULL;
    if (want < 0) { PyErr_SetString(PyExc_ValueError, "negative pool size"); return NULL; }
    Py_ssize_t len = PyUnicode_GET_LENGTH(text);
    uint16_t *codes = PyMem_Malloc((len + 1) * sizeof(uint16_t));
    if (!codes) return PyErr_NoMemory();
    Py_ssize_t m = kept_units(text, codes);
    Py_ssize_t count = m - 8 + 1;
    if (count <= 0) { PyMem_Free(codes); return Py_BuildValue("(y#y#)", "", (Py_ssize_t)0, "", (Py_ssize_t)0); }
    uint32_t *out = PyMem_Malloc((2 * count + want) * sizeof(uint32_t));
    if (!out) { PyMem_Free(codes); return PyErr_NoMemory(); }
    const uint64_t mix1 = 0x9E3779B97F4A7C15ull, mix2 = 0xC2B2AE3D27D4EB4Full;
    /* Every 4-unit window read as one little-endian uint64; two of them make a shingle. */
    uint64_t q0 = 0, q4 = 0;
    for (int k = 3; k >= 0; k--) { q0 = (q0 << 16) | codes[k]; q4 = (q4 << 16) | codes[4 + k]; }
    for (Py_ssize_t i = 0;; i++) {
        uint64_t h = (q0 * mix1) ^ (q4 * mix2);
        h ^= h >> 29;
        h *= mix1;
        out[i] = (uint32_t)(h >> 32);
        if (i + 1 >= count) break;
        q0 = (q0 >> 16) | ((uint64_t)codes[i + 4] << 48);
        q4 = (q4 >> 16) | ((uint64_t)codes[i + 8] << 48);
    }
    PyMem_Free(codes);
    PyObject *res = NULL;
    uint32_t limit = pool_limit(count, want), *low = out + count;
    Py_ssize_t nlow;
    Py_ssize_t d = keep_distinct(out, count, limit, low, &nlow);
    if (d < 0) { PyErr_NoMemory(); goto done; }
    uint32_t *pool = out + 2 * count;
    Py_ssize_t np = smallest(out, d, want, pool, low, nlow, limit);
    res = Py_BuildValue("(y#y#)", (const char *)out, d * (Py_ssize_t)sizeof(uint32_t), (const char *)pool,
                        np * (Py_ssize_t)sizeof(uint32_t));
done:
    PyMem_Free(out);
    return res;
}

/* ---- story index lookups (dedup_tables.Postings: sorted key/value arrays + a buffer of recent additions) */

/* dedup_tables.Postings: uint32 keys sorted and bucketed by their top 16 bits (``starts``: where each
   bucket begins), of which only the low 16 bits are stored, and their values. */
typedef struct { Py_buffer keys, vals, starts; } Sorted;

static int sorted_open(Sorted *m, PyObject *keys, PyObject *vals, PyObject *starts) {
    if (PyObject_GetBuffer(keys, &m->keys, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(vals, &m->vals, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&m->keys);
        return -1;
    }
    if (PyObject_GetBuffer(starts, &m->starts, PyBUF_C_CONTIGUOUS) < 0) {
        PyBuffer_Release(&m->keys);
        PyBuffer_Release(&m->vals);
        return -1;
    }
    if (m->keys.itemsize != 2 || m->vals.itemsize != 4 || 2 * m->keys.len != m->vals.len ||
        m->starts.itemsize != 4 || m->starts.len != 4 * ((1 << 16) + 1)) {
        PyBuffer_Release(&m->keys);
        PyBuffer_Release(&m->vals);
        PyBuffer_Release(&m->starts);
        PyErr_SetString(PyExc_TypeError, "expected uint16 low keys, uint32 values and 65,537 bucket starts");
        return -1;
    }
    return 0;
}

static void sorted_close(Sorted *m) {
    PyBuffer_Release(&m->keys);
    PyBuffer_Release(&m->vals);
    PyBuffer_Release(&m->starts);
}

/* [lo, hi) of ``full_key`` in the sorted keys: a search of its bucket for its low 16 bits. */
static void sorted_run(const Sorted *m, uint32_t full_key, Py_ssize_t *lo, Py_ssize_t *hi) {
    const uint16_t *k = m->keys.buf;
    const uint32_t *starts = m->starts.buf;
    uint16_t key = (uint16_t)(full_key & 0xFFFF);
    Py_ssize_t n = starts[(full_key >> 16) + 1], a = starts[full_key >> 16], b = n;
    while (a < b) { Py_ssize_t mid = (a + b) / 2; if (k[mid] < key) a = mid + 1; else b = mid; }
    *lo = a;
    /* Most keys have a few entries: step over them before searching (the search misses the cache). */
    for (b = a + 8; a < n && a < b && k[a] == key; a++) {}
    if (a == b) {
        b = n;
        while (a < b) { Py_ssize_t mid = (a + b) / 2; if (k[mid] <= key) a = mid + 1; else b = mid; }
    }
    *hi = a;
}

/* [lo, hi) of each of ``n`` keys (sorted_run). The bucket bounds and keys of them all are asked for first: at a
 * million articles every search misses the cache, and the misses of an article's keys then overlap. */
static void sorted_runs(const Sorted *m, const uint32_t *keys, Py_ssize_t n, Py_ssize_t *lo, Py_ssize_t *hi) {
    const uint32_t *starts = m->starts.buf;
    const char *k = m->keys.buf;
    for (Py_ssize_t i = 0; i < n; i++) __builtin_prefetch(starts + (keys[i] >> 16));
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t from = (Py_ssize_t)starts[keys[i] >> 16] * 2, to = (Py_ssize_t)starts[(keys[i] >> 16) + 1] * 2;
        if (to - from > 16 * 64) to = from + 16 * 64; /* a crowded bucket: its first lines */
        for (Py_ssize_t at = from & ~(Py_ssize_t)63; at < to; at += 64) __builtin_prefetch(k + at);
    }
    for (Py_ssize_t i = 0; i < n; i++) sorted_run(m, keys[i], &lo[i], &hi[i]);
}

/* dedup_tables._Pending: a Postings' recent additions in the order added, chained by a hash of the key:
 * heads[h] is one past the newest entry whose key hashes to h (0: none), chain[i] one past the entry before
 * entry i in its chain (always an earlier one). */
#define PENDING_MIX 0x9E3779B1u
typedef struct {
    Py_buffer b[4];
    int opened;
    uint32_t *keys, *vals;
    int32_t *chain, *heads;
    Py_ssize_t n, room;
    int shift;
} Pending;

static void pending_close(Pending *p) {
    for (int i = 0; i < p->opened; i++) PyBuffer_Release(&p->b[i]);
    p->opened = 0;
}

/* Opens _Pending.parts(): (keys, vals, chain, heads, n); ``writable`` for Index.add. */
static int pending_open(Pending *p, PyObject *parts, int writable) {
    p->opened = 0;
    if (!PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) != 5) {
        PyErr_SetString(PyExc_TypeError, "expected the postings buffer's (keys, vals, chain, heads, n)");
        return -1;
    }
    for (; p->opened < 4; p->opened++) {
        int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(parts, p->opened), &p->b[p->opened], flags) < 0) {
            pending_close(p);
            return -1;
        }
    }
    p->room = p->b[0].len / 4;
    p->n = PyLong_AsSsize_t(PyTuple_GET_ITEM(parts, 4));
    Py_ssize_t nheads = p->b[3].len / 4;
    int ok = !(p->n == -1 && PyErr_Occurred()) && p->n >= 0 && p->n <= p->room && nheads >= 2 &&
             !(nheads & (nheads - 1)) && nheads <= ((Py_ssize_t)1 << 31);
    for (int i = 0; i < 4; i++) ok = ok && p->b[i].itemsize == 4 && (i == 3 || p->b[i].len == p->b[0].len);
    if (!ok) {
        pending_close(p);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "postings buffer arrays of unexpected shape");
        return -1;
    }
    p->keys = p->b[0].buf;
    p->vals = p->b[1].buf;
    p->chain = p->b[2].buf;
    p->heads = p->b[3].buf;
    p->shift = 32;
    while (((Py_ssize_t)1 << (32 - p->shift)) < nheads) p->shift--;
    return 0;
}

static inline int32_t *pending_head(const Pending *p, uint32_t key) {
    return &p->heads[(uint32_t)(key * PENDING_MIX) >> p->shift];
}

/* The entry before ``at`` (both one past an index) in its chain, 0 at the end (or on a chain that does not
 * go back, which only a damaged buffer has). */
static inline int32_t pending_next(const Pending *p, int32_t at) {
    int32_t next = p->chain[at - 1];
    return next < at && next >= 0 ? next : 0;
}

#define PENDING_EACH(p, key, at) \
    for (int32_t at = *pending_head(p, key); at > 0 && at <= (p)->n; at = pending_next(p, at)) \
        if ((p)->keys[at - 1] == (key))

/* How many values are buffered under ``key``. */
static Py_ssize_t pending_count(const Pending *p, uint32_t key) {
    Py_ssize_t count = 0;
    PENDING_EACH(p, key, at) count++;
    return count;
}

/* pending_count of each of ``n`` keys into ``more``, their chain heads asked for first (see sorted_runs). */
static void pending_counts(const Pending *p, const uint32_t *keys, Py_ssize_t n, Py_ssize_t *more) {
    for (Py_ssize_t i = 0; i < n; i++) __builtin_prefetch(pending_head(p, keys[i]));
    for (Py_ssize_t i = 0; i < n; i++) more[i] = pending_count(p, keys[i]);
}

/* Buffers ``val`` under ``key`` (the caller checked there is room). */
static void pending_put(Pending *p, uint32_t key, uint32_t val) {
    Py_ssize_t i = p->n++;
    int32_t *head = pending_head(p, key);
    p->keys[i] = key;
    p->vals[i] = val;
    p->chain[i] = *head;
    *head = (int32_t)(i + 1);
}

/* A list of the uint32 field at ``first`` of ``n`` structs ``size`` bytes apart (e.g. &found[0].slot). */
static PyObject *u32_list(const void *first, size_t size, Py_ssize_t n) {
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        uint32_t value;
        memcpy(&value, (const char *)first + (size_t)i * size, sizeof value);
        PyObject *v = PyLong_FromUnsignedLong(value);
        if (!v) { Py_CLEAR(out); break; }
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

/* A copy of a C-contiguous uint32 buffer (a numpy array, or bytes holding uint32 values). */
static int read_u32_buffer(PyObject *obj, uint32_t **out, Py_ssize_t *n) {
    Py_buffer b;
    if (PyObject_GetBuffer(obj, &b, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if ((b.itemsize != 4 && b.itemsize != 1) || b.len % 4) {
        PyBuffer_Release(&b);
        PyErr_SetString(PyExc_TypeError, "expected a uint32 array");
        return -1;
    }
    *n = b.len / 4;
    *out = PyMem_Malloc((*n + 1) * sizeof(uint32_t));
    if (*out) memcpy(*out, b.buf, b.len);
    PyBuffer_Release(&b);
    if (!*out) { PyErr_NoMemory(); return -1; }
    return 0;
}

static int read_u32_list(PyObject *seq, uint32_t **out, Py_ssize_t *n) {
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of ints");
    if (!fast) return -1;
    *n = PySequence_Fast_GET_SIZE(fast);
    *out = PyMem_Malloc((*n + 1) * sizeof(uint32_t));
    if (!*out) { Py_DECREF(fast); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < *n; i++) {
        unsigned long v = PyLong_AsUnsignedLongMask(PySequence_Fast_GET_ITEM(fast, i));
        if (v == (unsigned long)-1 && PyErr_Occurred()) { Py_DECREF(fast); PyMem_Free(*out); return -1; }
        (*out)[i] = (uint32_t)v;
    }
    Py_DECREF(fast);
    return 0;
}

static PyObject *multimap_count(PyObject *self, PyObject *args) {
    PyObject *keys, *vals, *starts, *pending, *query;
    if (!PyArg_ParseTuple(args, "OOOOO", &keys, &vals, &starts, &pending, &query)) return NULL;
    Sorted m;
    Pending p;
    if (sorted_open(&m, keys, vals, starts) < 0) return NULL;
    if (pending_open(&p, pending, 0) < 0) { sorted_close(&m); return NULL; }
    uint32_t *q;
    Py_ssize_t n;
    PyObject *out = NULL;
    if (read_u32_list(query, &q, &n) < 0) goto done;
    out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        Py_ssize_t lo, hi;
        sorted_run(&m, q[i], &lo, &hi);
        PyObject *c = PyLong_FromSsize_t(hi - lo + pending_count(&p, q[i]));
        if (!c) { Py_CLEAR(out); break; }
        PyList_SET_ITEM(out, i, c);
    }
    PyMem_Free(q);
done:
    pending_close(&p);
    sorted_close(&m);
    return out;
}

/* Index.sketch_of's rule: the first ``k`` hashes of ``pool`` (uint32, ascending) whose key ``hash ^ salt`` has
 * fewer than ``common`` values in the postings (boilerplate and stock phrases are posted by many texts). The
 * kept hashes go to ``out`` (room for ``k``, at most 64); if ``keys`` is not NULL, each kept one's key, stored range
 * and count of buffered values go to ``keys``, ``lo``, ``hi`` and ``more`` (for a candidate search). Returns how
 * many. The hashes still needed are looked up in batches (sorted_runs), never more than can be kept. */
static Py_ssize_t keep_sketch(const Sorted *m, const Pending *p, const uint32_t *pool, Py_ssize_t npool,
                              uint32_t salt, Py_ssize_t common, Py_ssize_t k, uint32_t *out, uint32_t *keys,
                              Py_ssize_t *lo, Py_ssize_t *hi, Py_ssize_t *more) {
    uint32_t key[64];
    Py_ssize_t a[64], z[64], buffered[64], kept = 0;
    if (k > 64) k = 64;
    for (Py_ssize_t i = 0; i < npool && kept < k;) {
        Py_ssize_t batch = k - kept < npool - i ? k - kept : npool - i;
        for (Py_ssize_t j = 0; j < batch; j++) key[j] = pool[i + j] ^ salt;
        sorted_runs(m, key, batch, a, z);
        pending_counts(p, key, batch, buffered);
        for (Py_ssize_t j = 0; j < batch; j++) {
            if (z[j] - a[j] + buffered[j] >= common) continue;
            out[kept] = pool[i + j];
            if (keys) { keys[kept] = key[j]; lo[kept] = a[j]; hi[kept] = z[j]; more[kept] = buffered[j]; }
            kept++;
        }
        i += batch;
    }
    return kept;
}

/* Index.sketch_of: see keep_sketch. */
static PyObject *sketch_keep(PyObject *self, PyObject *args) {
    PyObject *keys, *vals, *starts, *pending, *pool_obj;
    unsigned long salt;
    Py_ssize_t common, k;
    if (!PyArg_ParseTuple(args, "OOOOOknn", &keys, &vals, &starts, &pending, &pool_obj, &salt, &common, &k))
        return NULL;
    Sorted m;
    Pending p;
    if (sorted_open(&m, keys, vals, starts) < 0) return NULL;
    if (pending_open(&p, pending, 0) < 0) { sorted_close(&m); return NULL; }
    Py_buffer pb;
    if (PyObject_GetBuffer(pool_obj, &pb, PyBUF_C_CONTIGUOUS) < 0) { pending_close(&p); sorted_close(&m); return NULL; }
    PyObject *out = NULL;
    uint32_t kept[64];
    if (pb.itemsize != 4) { PyErr_SetString(PyExc_TypeError, "expected a uint32 pool"); goto done; }
    if (k < 0 || k > 64) { PyErr_SetString(PyExc_ValueError, "sketches hold 0 to 64 hashes"); goto done; }
    Py_ssize_t n = keep_sketch(&m, &p, pb.buf, pb.len / 4, (uint32_t)salt, common, k, kept, NULL, NULL, NULL, NULL);
    out = PyBytes_FromStringAndSize((const char *)kept, n * (Py_ssize_t)sizeof(uint32_t));
done:
    PyBuffer_Release(&pb);
    pending_close(&p);
    sorted_close(&m);
    return out;
}

/* One candidate slot: how many (key, value) entries found it and the first key that did. */
typedef struct { uint32_t slot, hits, first, used; } Found;

static int found_by_discovery(const void *a, const void *b) {
    const Found *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int found_by_hits(const void *a, const void *b) {
    const Found *x = a, *y = b;
    if (x->hits != y->hits) return x->hits > y->hits ? -1 : 1;
    return x->slot > y->slot ? -1 : x->slot < y->slot;
}

/* The slots found so far: an open-addressing table, and where its used entries are (so that reading and
 * clearing them costs what was found, not the table's size). */
typedef struct { Found *table; uint32_t *used_at; Py_ssize_t mask, distinct; } Slots;

static void slots_hit(Slots *s, uint32_t slot, uint32_t which) {
    Py_ssize_t at = (Py_ssize_t)((slot * 0x9E3779B1u) & (uint32_t)s->mask);
    while (s->table[at].used && s->table[at].slot != slot) at = (at + 1) & s->mask;
    Found *f = &s->table[at];
    if (!f->used) {
        f->used = 1; f->slot = slot; f->hits = 0; f->first = which;
        s->used_at[s->distinct++] = (uint32_t)at;
    }
    f->hits++;
    if (which < f->first) f->first = which;
}

/* find_candidates' table, kept all zero between calls (the GIL is held throughout) and grown as needed. */
static Found *slot_table;
static Py_ssize_t slot_table_size;

/* The slots found by the ``n`` query keys ``q`` (``caps[i]``: the posting cap of key i) within ``window`` of
 * ``t``, as Index.candidates orders them; ``*out`` (PyMem, freed by the caller) gets ``*kept`` of them.
 * ``lo``, ``hi`` and ``more`` hold ``n`` entries each: the stored range and count of buffered values of each
 * key, looked up here for the keys before ``known`` (the caller looked up the rest). Returns -1 with an
 * exception set on error. */
static int find_candidates(const Sorted *m, const Pending *p, const uint32_t *q, const uint32_t *caps, Py_ssize_t n,
                           Py_ssize_t *lo, Py_ssize_t *hi, Py_ssize_t *more, Py_ssize_t known,
                           const uint32_t *tcol, Py_ssize_t nslots, double t, double window, Py_ssize_t limit,
                           Py_ssize_t crowd, Py_ssize_t min_hits, Found **out, Py_ssize_t *kept_out) {
    Slots s = {NULL, NULL, 0, 0};
    Found *list = NULL;
    int rc = -1;
    *out = NULL;
    *kept_out = 0;
    Py_ssize_t total = 0;
    sorted_runs(m, q, known, lo, hi);
    pending_counts(p, q, known, more);
    const uint32_t *v = m->vals.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (hi[i] - lo[i] + more[i] > (Py_ssize_t)caps[i]) { hi[i] = lo[i]; more[i] = 0; continue; } /* too common */
        total += hi[i] - lo[i] + more[i];
        for (Py_ssize_t j = lo[i]; j < hi[i]; j += 16) __builtin_prefetch(v + j); /* read below */
    }
    Py_ssize_t size = 16;
    while (size < 2 * total) size <<= 1;
    if (size > slot_table_size) {
        PyMem_Free(slot_table);
        slot_table = PyMem_Calloc(size, sizeof(Found));
        slot_table_size = slot_table ? size : 0;
    }
    s.used_at = PyMem_Malloc((total + 1) * sizeof(uint32_t));
    if (!slot_table || !s.used_at) { PyErr_NoMemory(); goto done; }
    s.table = slot_table;
    s.mask = size - 1;
    for (Py_ssize_t i = 0; i < n; i++)
        for (Py_ssize_t j = lo[i]; j < hi[i]; j++) slots_hit(&s, v[j], (uint32_t)i);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!more[i]) continue;
        PENDING_EACH(p, q[i], at) slots_hit(&s, p->vals[at - 1], (uint32_t)i);
    }
    /* One shared rare word is enough in a quiet index; in a crowd, MIN_HITS keys; and within the window. */
    Py_ssize_t least = s.distinct > crowd ? min_hits : 1, kept = 0;
    list = PyMem_Malloc((s.distinct + 1) * sizeof(Found));
    if (!list) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < s.distinct; i++) {
        Found f = s.table[s.used_at[i]];
        if ((Py_ssize_t)f.hits < least) continue;
        if ((Py_ssize_t)f.slot >= nslots) { PyErr_SetString(PyExc_IndexError, "slot out of range"); goto done; }
        if (fabs((double)tcol[f.slot] - t) <= window) list[kept++] = f;
    }
    if (kept > limit) {
        qsort(list, kept, sizeof(Found), found_by_hits); /* most shared keys, then newest */
        kept = limit;
    } else {
        qsort(list, kept, sizeof(Found), found_by_discovery); /* in order of discovery */
    }
    *out = list;
    *kept_out = kept;
    list = NULL;
    rc = 0;
done:
    for (Py_ssize_t i = 0; i < s.distinct; i++) s.table[s.used_at[i]] = (Found){0, 0, 0, 0};
    PyMem_Free(s.used_at); PyMem_Free(list);
    return rc;
}

static int open_times(PyObject *times, Py_buffer *tb) {
    if (PyObject_GetBuffer(times, tb, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (tb->itemsize != 4) {
        PyErr_SetString(PyExc_TypeError, "expected uint32 times");
        PyBuffer_Release(tb);
        return -1;
    }
    return 0;
}

/* Index.candidates: see its docstring; ``caps[i]`` is the posting cap of query key i. */
static PyObject *candidates(PyObject *self, PyObject *args) {
    PyObject *keys, *vals, *starts, *pending, *query, *caps_obj, *times;
    double t, window;
    Py_ssize_t limit, crowd, min_hits;
    if (!PyArg_ParseTuple(args, "OOOOOOOddnnn", &keys, &vals, &starts, &pending, &query, &caps_obj, &times, &t,
                          &window, &limit, &crowd, &min_hits))
        return NULL;
    Sorted m;
    Pending p;
    if (sorted_open(&m, keys, vals, starts) < 0) return NULL;
    if (pending_open(&p, pending, 0) < 0) { sorted_close(&m); return NULL; }
    Py_buffer tb;
    if (open_times(times, &tb) < 0) { pending_close(&p); sorted_close(&m); return NULL; }
    uint32_t *q = NULL, *caps = NULL;
    Py_ssize_t n = 0, ncaps = 0, kept = 0, *lo = NULL, *hi = NULL, *more = NULL;
    Found *list = NULL;
    PyObject *out = NULL;
    if (read_u32_list(query, &q, &n) < 0 || read_u32_list(caps_obj, &caps, &ncaps) < 0) goto done;
    if (ncaps != n) { PyErr_SetString(PyExc_ValueError, "one cap per key"); goto done; }
    lo = PyMem_Malloc((n + 1) * sizeof *lo);
    hi = PyMem_Malloc((n + 1) * sizeof *hi);
    more = PyMem_Malloc((n + 1) * sizeof *more);
    if (!lo || !hi || !more) { PyErr_NoMemory(); goto done; }
    if (find_candidates(&m, &p, q, caps, n, lo, hi, more, n, tb.buf, tb.len / 4, t, window, limit, crowd, min_hits,
                        &list, &kept) < 0)
        goto done;
    out = u32_list(&list[0].slot, sizeof(Found), kept);
done:
    PyMem_Free(q); PyMem_Free(caps); PyMem_Free(list); PyMem_Free(lo); PyMem_Free(hi); PyMem_Free(more);
    PyBuffer_Release(&tb);
    pending_close(&p);
    sorted_close(&m);
    return out;
}

/* Multimap.first for uint64 keys (the article-id table): the last value of ``key``, or None. */
static PyObject *first_u64(PyObject *self, PyObject *args) {
    PyObject *keys, *vals, *buffer, *key_obj;
    if (!PyArg_ParseTuple(args, "OOO!O", &keys, &vals, &PyDict_Type, &buffer, &key_obj)) return NULL;
    PyObject *bucket = PyDict_GetItemWithError(buffer, key_obj);
    if (bucket == NULL && PyErr_Occurred()) return NULL;
    if (bucket != NULL && PyList_Check(bucket) && PyList_GET_SIZE(bucket)) {
        PyObject *last = PyList_GET_ITEM(bucket, PyList_GET_SIZE(bucket) - 1);
        Py_INCREF(last);
        return last;
    }
    unsigned long long key = PyLong_AsUnsignedLongLong(key_obj);
    if (key == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    Py_buffer kb, vb;
    if (PyObject_GetBuffer(keys, &kb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(vals, &vb, PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&kb); return NULL; }
    PyObject *out = NULL;
    if (kb.itemsize != 8 || vb.itemsize != 4) { PyErr_SetString(PyExc_TypeError, "expected uint64 keys"); goto done; }
    const uint64_t *k = kb.buf;
    Py_ssize_t a = 0, z = kb.len / 8;
    while (a < z) { Py_ssize_t mid = (a + z) / 2; if (k[mid] <= key) a = mid + 1; else z = mid; }
    if (a && k[a - 1] == key) out = PyLong_FromUnsignedLong(((const uint32_t *)vb.buf)[a - 1]);
    else { out = Py_None; Py_INCREF(out); }
done:
    PyBuffer_Release(&kb);
    PyBuffer_Release(&vb);
    return out;
}

/* ---- document frequencies (dedup_tables.Frequencies: float32 tables indexed by hash & (size - 1)) ---- */

static int open_table(PyObject *obj, Py_buffer *b, float **table, uint32_t *mask) {
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) return -1;
    Py_ssize_t n = b->len / 4;
    if (b->itemsize != 4 || n == 0 || (n & (n - 1))) {
        PyBuffer_Release(b);
        PyErr_SetString(PyExc_ValueError, "expected a float32 table of 2**k entries");
        return -1;
    }
    *table = b->buf;
    *mask = (uint32_t)(n - 1);
    return 0;
}

typedef struct { float df; uint32_t h; } Rare;

static int rare_cmp(const void *a, const void *b) {
    const Rare *x = a, *y = b;
    if (x->df != y->df) return x->df < y->df ? -1 : 1;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* By frequency, then value (rare_cmp's order); insertion sort for the few dozen words of one article. */
static void sort_rare(Rare *r, Py_ssize_t n) {
    if (n > 64) { qsort(r, n, sizeof(Rare), rare_cmp); return; }
    for (Py_ssize_t i = 1; i < n; i++) {
        Rare v = r[i];
        Py_ssize_t j = i;
        for (; j > 0 && rare_cmp(&r[j - 1], &v) > 0; j--) r[j] = r[j - 1];
        r[j] = v;
    }
}

/* dedup_index._rarest with the frequencies read from the table: the ``cap`` hashes of lowest
 * frequency (ties by value), or all of them sorted by value when they fit. */
static PyObject *rarest(PyObject *self, PyObject *args) {
    PyObject *table_obj, *hashes;
    Py_ssize_t cap;
    if (!PyArg_ParseTuple(args, "OOn", &table_obj, &hashes, &cap)) return NULL;
    Py_buffer tb;
    float *table;
    uint32_t mask, *h = NULL;
    Py_ssize_t n;
    if (open_table(table_obj, &tb, &table, &mask) < 0) return NULL;
    PyObject *out = NULL;
    Rare *r = NULL;
    if (read_u32_list(hashes, &h, &n) < 0) goto done;
    r = PyMem_Malloc((n + 1) * sizeof(Rare));
    if (!r) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) { r[i].h = h[i]; r[i].df = n <= cap ? 0.0f : table[h[i] & mask]; }
    sort_rare(r, n);
    Py_ssize_t kept = n < cap ? n : cap;
    out = u32_list(&r[0].h, sizeof(Rare), kept);
done:
    PyMem_Free(h);
    PyMem_Free(r);
    PyBuffer_Release(&tb);
    return out;
}


/* Frequencies.count on one table: each distinct entry the hashes fall on gains 1 (as numpy's fancy-index += does:
 * an entry hit twice by one article counts once). ``h`` is spent (masked and sorted). */
static void count_into(float *table, uint32_t mask, uint32_t *h, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) h[i] &= mask;
    sort_u32(h, n);
    for (Py_ssize_t i = 0; i < n; i++)
        if (i == 0 || h[i] != h[i - 1]) table[h[i]] += 1.0f;
}

/* Postings.merge, native: the buffered entries (_Pending, in the order added) merged into the sorted
 * postings, written to the output arrays (sized for all entries) with their bucket starts. As the numpy
 * merge does: buffered entries sorted by key, in the order added within a key, after the stored entries of
 * the same key. One pass over the stored entries instead of rebuilding their full keys to search them. */
typedef struct { uint32_t key, val; } Entry;

/* Stored entries [from, to) moved (memmove: the ranges may overlap) to end just before ``*w``, which moves back. */
static inline void move_entries(uint16_t *ok, uint32_t *ov, const uint16_t *k16, const uint32_t *v32, Py_ssize_t from,
                                Py_ssize_t to, Py_ssize_t *w) {
    Py_ssize_t count = to - from;
    *w -= count;
    if (count <= 0 || (ok + *w == k16 + from && ov + *w == v32 + from)) return; /* nothing to move, or already there */
    memmove(ok + *w, k16 + from, count * sizeof(uint16_t));
    memmove(ov + *w, v32 + from, count * sizeof(uint32_t));
}

static PyObject *postings_merge(PyObject *self, PyObject *args) {
    PyObject *keys, *vals, *starts, *pending, *okeys_obj, *ovals_obj, *ostarts_obj;
    if (!PyArg_ParseTuple(args, "OOOOOOO", &keys, &vals, &starts, &pending, &okeys_obj, &ovals_obj, &ostarts_obj))
        return NULL;
    Sorted m, o;
    Pending p;
    if (sorted_open(&m, keys, vals, starts) < 0) return NULL;
    if (sorted_open(&o, okeys_obj, ovals_obj, ostarts_obj) < 0) { sorted_close(&m); return NULL; }
    if (pending_open(&p, pending, 0) < 0) { sorted_close(&o); sorted_close(&m); return NULL; }
    Entry *e = NULL, *tmp = NULL;
    uint32_t *count = NULL;
    PyObject *out = NULL;
    Py_ssize_t n = p.n, nold = m.vals.len / 4;
    if (o.vals.len / 4 != nold + n || o.keys.readonly || o.vals.readonly || o.starts.readonly) {
        PyErr_SetString(PyExc_ValueError, "output arrays must be writable and hold every entry");
        goto done;
    }
    e = PyMem_Malloc((n + 1) * sizeof(Entry));
    tmp = PyMem_Malloc((n + 1) * sizeof(Entry));
    count = PyMem_Calloc((1 << 16) + 1, sizeof(uint32_t));
    if (!e || !tmp || !count) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < n; i++) e[i] = (Entry){p.keys[i], p.vals[i]};
    /* Stable radix sort by key: low 16 bits, then high 16 bits. */
    for (int shift = 0; shift <= 16; shift += 16) {
        memset(count, 0, ((1 << 16) + 1) * sizeof(uint32_t));
        for (Py_ssize_t i = 0; i < n; i++) count[((e[i].key >> shift) & 0xFFFF) + 1]++;
        for (int b = 0; b < (1 << 16); b++) count[b + 1] += count[b];
        for (Py_ssize_t i = 0; i < n; i++) tmp[count[(e[i].key >> shift) & 0xFFFF]++] = e[i];
        Entry *swap = e; e = tmp; tmp = swap;
    }
    /* A merge from the back, so the output may be the input's own storage grown in place (Postings keeps
     * room): an entry is written at or after where it was read. Equal keys keep stored entries first. */
    const uint16_t *k16 = m.keys.buf;
    const uint32_t *v32 = m.vals.buf, *st = m.starts.buf;
    uint16_t *ok = o.keys.buf;
    uint32_t *ov = o.vals.buf, *ost = o.starts.buf;
    int in_place = (void *)ok == (void *)k16 && (void *)ov == (void *)v32;
    Py_ssize_t w = nold + n, i = nold, ni = n;
    for (int64_t b = (1 << 16) - 1; b >= 0 && (ni > 0 || !in_place); b--) {
        Py_ssize_t lo = st[b];
        for (; ni > 0 && (e[ni - 1].key >> 16) == (uint32_t)b; ni--) {
            uint16_t low = (uint16_t)(e[ni - 1].key & 0xFFFF);
            Py_ssize_t from = i;
            while (from > lo && k16[from - 1] > low) from--;
            move_entries(ok, ov, k16, v32, from, i, &w); /* the stored entries after it */
            i = from;
            w--;
            ok[w] = low;
            ov[w] = e[ni - 1].val;
        }
        move_entries(ok, ov, k16, v32, lo, i, &w); /* the rest of the bucket */
        i = lo;
    }
    /* In place, what lies below the lowest buffered entry has not moved. New bucket starts: the old ones
     * shifted by the buffered entries of lower buckets (``st`` and ``ost`` may be one array). */
    Py_ssize_t below = 0;
    ni = 0;
    for (uint32_t b = 0; b < (1u << 16); b++) {
        uint32_t start = st[b];
        ost[b] = (uint32_t)(start + below);
        for (; ni < n && (e[ni].key >> 16) == b; ni++) below++;
    }
    ost[1 << 16] = (uint32_t)(nold + n);
    out = PyLong_FromSsize_t(nold + n);
done:
    PyMem_Free(e); PyMem_Free(tmp); PyMem_Free(count);
    pending_close(&p);
    sorted_close(&o);
    sorted_close(&m);
    return out;
}

/* ---- whole decisions and insertions for one article (Grouper._full_text_story, Index.add) ---------- */

/* The index's per-article columns, in dedup_index._COLUMNS order. */
enum { C_T, C_STORY, C_OUTLET, C_OFF, C_NTITLE, C_NBODY, C_NSKETCH, C_NBIGRAM, C_SIZE, N_COLS };
static const Py_ssize_t col_itemsize[N_COLS] = {4, 4, 4, 4, 1, 1, 1, 1, 2};
typedef struct Cols { Py_buffer b[N_COLS]; int opened; Py_ssize_t n; } Cols;

static void cols_close(Cols *c) {
    for (int i = 0; i < c->opened; i++) PyBuffer_Release(&c->b[i]);
    c->opened = 0;
}

static int cols_open(Cols *c, PyObject *tuple) {
    c->opened = 0;
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != N_COLS) {
        PyErr_SetString(PyExc_TypeError, "expected the index's columns as a tuple");
        return -1;
    }
    for (; c->opened < N_COLS; c->opened++) {
        int i = c->opened;
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(tuple, i), &c->b[i], PyBUF_C_CONTIGUOUS) < 0) { cols_close(c); return -1; }
        if (c->b[i].itemsize != col_itemsize[i] || c->b[i].len / col_itemsize[i] != c->b[0].len / 4) {
            c->opened++;
            cols_close(c);
            PyErr_SetString(PyExc_TypeError, "index columns of unexpected item size or length");
            return -1;
        }
    }
    c->n = c->b[0].len / 4;
    return 0;
}

#define COL(c, i, T) ((const T *)(c)->b[i].buf)

/* sketch_shares' bitmap of the new text's low 16 bits (8 KB: it stays in the first-level cache), all zero between
 * calls (the GIL is held throughout). */
static uint64_t low_bits[(1 << 16) / 64];
#define LOW_BIT(v) ((low_bits[(v) >> 6] >> ((v) & 63)) & 1)

/* Index.shares_inside: the share of each slot's stored sketch found among the low 16 bits of the new text's
 * shingle hashes, written to ``share``. A slot's sketch starts in flat16 after its words (two units each) and
 * bigrams: flat16[off + 2 * (n_title + n_body) + n_bigram:][:n_sketch]. Returns -1 (IndexError) for a slot
 * out of range. */
static int sketch_shares(const Py_buffer *shingles, const Py_buffer *flat16, const Cols *c,
                         const uint32_t *slots, Py_ssize_t n, double *share) {
    const uint32_t *sh = shingles->buf, *off = COL(c, C_OFF, uint32_t);
    const uint16_t *flat = flat16->buf;
    const uint8_t *nt = COL(c, C_NTITLE, uint8_t), *nb = COL(c, C_NBODY, uint8_t), *ng = COL(c, C_NBIGRAM, uint8_t),
                  *nsk = COL(c, C_NSKETCH, uint8_t);
    Py_ssize_t nsh = shingles->len / 4, nflat = flat16->len / 2;
    int bad = 0;
    for (Py_ssize_t i = 0; i < nsh; i++) low_bits[(sh[i] & 0xFFFF) >> 6] |= (uint64_t)1 << (sh[i] & 63);
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t s = slots[i];
        if ((Py_ssize_t)s >= c->n || (Py_ssize_t)off[s] + 2 * (nt[s] + nb[s]) + ng[s] + nsk[s] > nflat) {
            bad = 1;
            break;
        }
        const uint16_t *sketch = flat + off[s] + 2 * (nt[s] + nb[s]) + ng[s];
        long found = 0;
        for (int j = 0; j < nsk[s]; j++) found += LOW_BIT(sketch[j]);
        share[i] = nsk[s] ? (double)found / (double)nsk[s] : 0.0;
    }
    memset(low_bits, 0, sizeof low_bits);
    if (bad) PyErr_SetString(PyExc_IndexError, "slot out of range");
    return bad ? -1 : 0;
}

/* Index.shares_inside: see sketch_shares. */
static PyObject *shares_inside(PyObject *self, PyObject *args) {
    PyObject *shingles_obj, *flat_obj, *cols_obj, *slots_obj;
    if (!PyArg_ParseTuple(args, "OOOO", &shingles_obj, &flat_obj, &cols_obj, &slots_obj)) return NULL;
    Py_buffer sb, fb;
    Cols c;
    if (PyObject_GetBuffer(shingles_obj, &sb, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(flat_obj, &fb, PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&sb); return NULL; }
    if (cols_open(&c, cols_obj) < 0) { PyBuffer_Release(&fb); PyBuffer_Release(&sb); return NULL; }
    uint32_t *slots = NULL;
    double *share = NULL;
    Py_ssize_t n = 0;
    PyObject *out = NULL;
    if (sb.itemsize != 4 || fb.itemsize != 2) { PyErr_SetString(PyExc_TypeError, "expected uint32 shingles, uint16 flat"); goto done; }
    if (read_u32_list(slots_obj, &slots, &n) < 0) goto done;
    share = PyMem_Malloc((n + 1) * sizeof(double));
    if (!share) { PyErr_NoMemory(); goto done; }
    if (sketch_shares(&sb, &fb, &c, slots, n, share) < 0) goto done;
    out = PyList_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *v = PyFloat_FromDouble(share[i]);
        if (!v) { Py_CLEAR(out); break; }
        PyList_SET_ITEM(out, i, v);
    }
done:
    PyMem_Free(slots);
    PyMem_Free(share);
    cols_close(&c);
    PyBuffer_Release(&fb);
    PyBuffer_Release(&sb);
    return out;
}


/* The uint32 hashes of a set (or any iterable of ints) or of a uint32 buffer, sorted ascending (a buffer from
 * word_features is sorted already, and the sort of a sorted array only checks it). */
static int read_sorted(PyObject *seq, uint32_t **out, Py_ssize_t *n) {
    if ((PyObject_CheckBuffer(seq) ? read_u32_buffer(seq, out, n) : read_u32_list(seq, out, n)) < 0) return -1;
    sort_u32(*out, *n);
    return 0;
}

static int in_sorted(const uint32_t *a, Py_ssize_t n, uint32_t v) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) { Py_ssize_t mid = (lo + hi) / 2; if (a[mid] < v) lo = mid + 1; else hi = mid; }
    return lo < n && a[lo] == v;
}

/* dedup_index._rarest of ``n`` hashes sorted ascending: all of them if they fit ``cap``, else the ``cap`` of
 * lowest frequency (ties by value). Writes to ``out``; ``scratch`` holds ``n`` entries. Returns how many. */
static Py_ssize_t pick_rarest(const uint32_t *h, Py_ssize_t n, Py_ssize_t cap, const float *table, uint32_t mask,
                              uint32_t *out, Rare *scratch) {
    if (cap <= 0) return 0;
    if (n <= cap) { memcpy(out, h, n * sizeof(uint32_t)); return n; }
    /* The ``cap`` rarest so far, in order: a hash rarer than the last of them is inserted (no full sort). */
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Rare v = {table[h[i] & mask], h[i]};
        if (m == cap && rare_cmp(&v, &scratch[m - 1]) >= 0) continue;
        Py_ssize_t j = m < cap ? m++ : cap - 1;
        for (; j > 0 && rare_cmp(&scratch[j - 1], &v) > 0; j--) scratch[j] = scratch[j - 1];
        scratch[j] = v;
    }
    for (Py_ssize_t i = 0; i < cap; i++) out[i] = scratch[i].h;
    return cap;
}

/* Grouper._full_text_story, native: (story, sketch). The sketch is Index.sketch_of's (keep_sketch). The story
 * is the one the full text joins, None for a story of its own, or UNDECIDED (dedup._UNDECIDED) when the
 * full-text rules alone cannot decide: a candidate is a headline or snippet, a copy comes from the same
 * outlet, or the sketch is empty (only stock phrases).
 * Keys: the headline's words and the ``lead_keys`` rarest other lead words (Index.full_keys), then the
 * sketch's shingles (their postings already looked up for the sketch); candidates as Index.candidates;
 * shares as Index.shares_inside; near-verbatim as dedup_model.near_verbatim (same arithmetic, same order). */
#define UNDECIDED (-1)
#define NEW_STORY (-2)
static PyObject *place_full(PyObject *self, PyObject *args) {
    PyObject *pkeys, *pvals, *pstarts, *pending, *cols_obj, *flat_obj, *table_obj, *title_obj, *body_obj, *pool_obj,
        *shingles_obj, *closed;
    Py_ssize_t size, limit, crowd, min_hits, max_words, max_shingles, lead_keys, common, k;
    unsigned long outlet, salt;
    double t, window, common_df, near_resemblance, near_containment;
    int roundup;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOnkdO!p(dnnnnnnknnddd)", &pkeys, &pvals, &pstarts, &pending,
                          &cols_obj, &flat_obj, &table_obj, &title_obj, &body_obj, &pool_obj, &shingles_obj, &size,
                          &outlet, &t, &PySet_Type, &closed, &roundup, &window, &limit, &crowd, &min_hits, &max_words,
                          &max_shingles, &lead_keys, &salt, &common, &k, &common_df, &near_resemblance,
                          &near_containment))
        return NULL;
    Sorted m;
    Pending p;
    Cols c;
    Py_buffer fb, tb, sb, pb;
    float *table;
    uint32_t mask;
    if (sorted_open(&m, pkeys, pvals, pstarts) < 0) return NULL;
    if (pending_open(&p, pending, 0) < 0) { sorted_close(&m); return NULL; }
    if (cols_open(&c, cols_obj) < 0) { pending_close(&p); sorted_close(&m); return NULL; }
    int have_flat = 0, have_table = 0, have_shingles = 0, have_pool = 0;
    uint32_t *title = NULL, *body = NULL, *q = NULL, *caps = NULL;
    Py_ssize_t *lo = NULL, *hi = NULL, *more = NULL;
    Rare *scratch = NULL;
    Found *found = NULL;
    double *share = NULL;
    long *stories = NULL;
    char *near = NULL;
    uint32_t *slots = NULL;
    Py_ssize_t ntitle, nbody, kept = 0;
    long answer = NEW_STORY;
    PyObject *out = NULL;
    if (PyObject_GetBuffer(flat_obj, &fb, PyBUF_C_CONTIGUOUS) < 0) goto done;
    have_flat = 1;
    if (open_table(table_obj, &tb, &table, &mask) < 0) goto done;
    have_table = 1;
    if (PyObject_GetBuffer(shingles_obj, &sb, PyBUF_C_CONTIGUOUS) < 0) goto done;
    have_shingles = 1;
    if (PyObject_GetBuffer(pool_obj, &pb, PyBUF_C_CONTIGUOUS) < 0) goto done;
    have_pool = 1;
    if (fb.itemsize != 2 || sb.itemsize != 4 || pb.itemsize != 4) {
        PyErr_SetString(PyExc_TypeError, "expected uint16 flat, uint32 shingles and pool");
        goto done;
    }
    if (read_sorted(title_obj, &title, &ntitle) < 0 || read_sorted(body_obj, &body, &nbody) < 0) goto done;
    /* The words' frequencies are read once the sketch is looked up: asked for now, they come meanwhile. */
    for (Py_ssize_t i = 0; i < ntitle; i++) __builtin_prefetch(table + (title[i] & mask));
    for (Py_ssize_t i = 0; i < nbody; i++) __builtin_prefetch(table + (body[i] & mask));
    Py_ssize_t npool = pb.len / 4, most = ntitle + nbody + npool + 1;
    q = PyMem_Malloc(most * sizeof(uint32_t));
    caps = PyMem_Malloc(most * sizeof(uint32_t));
    lo = PyMem_Malloc(most * sizeof *lo);
    hi = PyMem_Malloc(most * sizeof *hi);
    more = PyMem_Malloc(most * sizeof *more);
    scratch = PyMem_Malloc((nbody + 1) * sizeof(Rare));
    if (!q || !caps || !lo || !hi || !more || !scratch) { PyErr_NoMemory(); goto done; }
    /* The sketch, its shingle keys looked up once: their ranges are kept for the candidate search. */
    const uint32_t *pool = pb.buf;
    uint32_t sk_key[64], sketch[64];
    Py_ssize_t sk_lo[64], sk_hi[64], sk_more[64];
    if (k > 64) { PyErr_SetString(PyExc_ValueError, "sketches hold at most 64 hashes"); goto done; }
    Py_ssize_t nsketch = keep_sketch(&m, &p, pool, npool, (uint32_t)salt, common, k, sketch, sk_key, sk_lo, sk_hi,
                                     sk_more);
    if (nsketch == 0) { answer = UNDECIDED; goto answer; }
    /* Keys: headline words ascending, then the rarest lead words not in the headline; common ones left out. */
    Py_ssize_t nlead = 0;
    for (Py_ssize_t i = 0; i < nbody; i++)
        if (!in_sorted(title, ntitle, body[i])) body[nlead++] = body[i];
    uint32_t *words = q;
    memcpy(words, title, ntitle * sizeof(uint32_t));
    Py_ssize_t nwords = ntitle + pick_rarest(body, nlead, lead_keys, table, mask, words + ntitle, scratch);
    Py_ssize_t nq = 0;
    for (Py_ssize_t i = 0; i < nwords; i++)
        if ((double)table[words[i] & mask] + 2.0 <= common_df) { caps[nq] = (uint32_t)max_words; q[nq++] = words[i]; }
    Py_ssize_t known = nq;
    for (Py_ssize_t i = 0; i < nsketch; i++, nq++) {
        caps[nq] = (uint32_t)max_shingles;
        q[nq] = sk_key[i];
        lo[nq] = sk_lo[i];
        hi[nq] = sk_hi[i];
        more[nq] = sk_more[i];
    }
    if (find_candidates(&m, &p, q, caps, nq, lo, hi, more, known, COL(&c, C_T, uint32_t), c.n, t, window,
                        limit, crowd, min_hits, &found, &kept) < 0)
        goto done;
    const uint8_t *nsk = COL(&c, C_NSKETCH, uint8_t);
    for (Py_ssize_t i = 0; i < kept; i++)
        if (!nsk[found[i].slot]) { answer = UNDECIDED; break; } /* a headline or snippet: the headline model decides */
    if (answer == UNDECIDED || kept == 0) goto answer;
    /* Share of each candidate's stored sketch found among the new text's shingles (Index.shares_inside). */
    share = PyMem_Malloc(kept * sizeof(double));
    stories = PyMem_Malloc(kept * sizeof(long));
    near = PyMem_Calloc(kept, 1);
    slots = PyMem_Malloc(kept * sizeof(uint32_t));
    if (!share || !stories || !near || !slots) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < kept; i++) slots[i] = found[i].slot;
    if (sketch_shares(&sb, &fb, &c, slots, kept, share) < 0) goto done;
    /* Near-verbatim per candidate (dedup_model.near_verbatim), then per story in order of discovery. */
    const uint16_t *osize = COL(&c, C_SIZE, uint16_t);
    const uint32_t *ooutlet = COL(&c, C_OUTLET, uint32_t);
    const int32_t *ostory = COL(&c, C_STORY, int32_t);
    Py_ssize_t nstories = 0;
    for (Py_ssize_t i = 0; i < kept; i++) {
        uint32_t s = found[i].slot;
        double shared = share[i] * (double)osize[s];
        double uni = (double)(size + (Py_ssize_t)osize[s]) - shared;
        double resemblance = uni > 0 ? shared / uni : 0.0;
        double new_inside = size ? shared / (double)size : 0.0;
        int is_near = resemblance >= near_resemblance || (share[i] > new_inside ? share[i] : new_inside) >= near_containment;
        if (is_near && outlet && outlet == ooutlet[s]) { answer = UNDECIDED; goto answer; } /* same outlet: headlines too */
        Py_ssize_t at = 0;
        while (at < nstories && stories[at] != ostory[s]) at++;
        if (at == nstories) { stories[nstories] = ostory[s]; near[nstories++] = 0; }
        near[at] |= (char)is_near;
    }
    /* The last story found that holds a copy, leaving out round-up stories unless the article is one. */
    for (Py_ssize_t at = nstories - 1; at >= 0; at--) {
        if (!near[at]) continue;
        if (!roundup && PySet_GET_SIZE(closed)) {
            PyObject *key = PyLong_FromLong(stories[at]);
            if (!key) goto done;
            int hit = PySet_Contains(closed, key);
            Py_DECREF(key);
            if (hit < 0) goto done;
            if (hit) continue;
        }
        answer = stories[at];
        break;
    }
answer:
    if (answer == NEW_STORY)
        out = Py_BuildValue("Oy#", Py_None, (const char *)sketch, nsketch * (Py_ssize_t)sizeof(uint32_t));
    else
        out = Py_BuildValue("ly#", answer, (const char *)sketch, nsketch * (Py_ssize_t)sizeof(uint32_t));
done:
    PyMem_Free(title); PyMem_Free(body); PyMem_Free(q); PyMem_Free(caps); PyMem_Free(lo); PyMem_Free(hi);
    PyMem_Free(more); PyMem_Free(scratch); PyMem_Free(found); PyMem_Free(share); PyMem_Free(stories);
    PyMem_Free(near); PyMem_Free(slots);
    if (have_pool) PyBuffer_Release(&pb);
    if (have_shingles) PyBuffer_Release(&sb);
    if (have_table) PyBuffer_Release(&tb);
    if (have_flat) PyBuffer_Release(&fb);
    cols_close(&c);
    pending_close(&p);
    sorted_close(&m);
    return out;
}

static PyObject *str_append, *str_frombytes; /* method names, interned once */

static int append_value(PyObject *column, unsigned long value) {
    PyObject *v = PyLong_FromUnsignedLong(value);
    if (!v) return -1;
    PyObject *r = PyObject_CallMethodOneArg(column, str_append, v);
    Py_DECREF(v);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Appends ``value`` to the buffered list of ``key`` (a new list for a new key). The lists hold only ints, so
 * they can never be part of a reference cycle: they are untracked by the garbage collector, which would
 * otherwise walk the tens of thousands of them in every full collection. */
static int buffer_append(PyObject *buffer, PyObject *key, PyObject *value) {
    PyObject *bucket = PyDict_GetItemWithError(buffer, key);
    if (bucket) return PyList_Append(bucket, value);
    if (PyErr_Occurred()) return -1;
    PyObject *fresh = PyList_New(1);
    if (!fresh) return -1;
    Py_INCREF(value);
    PyList_SET_ITEM(fresh, 0, value);
    PyObject_GC_UnTrack(fresh);
    int rc = PyDict_SetItem(buffer, key, fresh);
    Py_DECREF(fresh);
    return rc;
}

/* Multimap.add, native: ``value`` buffered under each of ``keys`` (see buffer_append). */
static PyObject *multimap_add(PyObject *self, PyObject *args) {
    PyObject *buffer, *keys, *value;
    if (!PyArg_ParseTuple(args, "O!O!O", &PyDict_Type, &buffer, &PyList_Type, &keys, &value)) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++)
        if (buffer_append(buffer, PyList_GET_ITEM(keys, i), value) < 0) return NULL;
    Py_RETURN_NONE;
}

/* Index.add, native, but for the id table, the clock and the decay: the article's capped features appended
 * to the columns (a tuple in _COLUMNS order) and to flat16, its posting keys to the postings' buffer under
 * ``slot``, then its distinct words and bigrams counted (Frequencies.count). Returns how many posting keys
 * were added. */
static PyObject *index_add(PyObject *self, PyObject *args) {
    PyObject *cols, *flat, *table_obj, *bigram_table_obj, *pending, *title_obj, *body_obj, *bigram_obj, *sketch_obj;
    Py_ssize_t slot, size, title_cap, body_cap, body_cap_full, bigram_cap, posting_words, posting_words_full,
        posting_shingles;
    unsigned long t, outlet, salt;
    unsigned long story; /* a story number: never negative */
    int has_body;
    if (!PyArg_ParseTuple(args, "O!OOOOOOOOnkkkpn(nnnnnnnk)", &PyTuple_Type, &cols, &flat, &table_obj,
                          &bigram_table_obj, &pending, &title_obj, &body_obj, &bigram_obj, &sketch_obj,
                          &slot, &t, &story, &outlet, &has_body, &size, &title_cap, &body_cap, &body_cap_full,
                          &bigram_cap, &posting_words, &posting_words_full, &posting_shingles, &salt))
        return NULL;
    if (PyTuple_GET_SIZE(cols) != N_COLS) { PyErr_SetString(PyExc_TypeError, "expected the index's columns"); return NULL; }
    if (slot < 0 || slot > UINT32_MAX) { PyErr_SetString(PyExc_ValueError, "slot out of range"); return NULL; }
    Py_buffer tb;
    float *table;
    uint32_t mask;
    Pending p;
    if (pending_open(&p, pending, 1) < 0) return NULL;
    if (open_table(table_obj, &tb, &table, &mask) < 0) { pending_close(&p); return NULL; }
    uint32_t *title = NULL, *body = NULL, *bigrams = NULL, *sketch = NULL, *picked = NULL, *all = NULL;
    uint16_t *units = NULL;
    Rare *scratch = NULL;
    PyObject *out = NULL, *raw = NULL, *r = NULL;
    Py_ssize_t ntitle, nbody, nbig, nsk;
    if (read_sorted(title_obj, &title, &ntitle) < 0 || read_sorted(body_obj, &body, &nbody) < 0 ||
        read_sorted(bigram_obj, &bigrams, &nbig) < 0 || read_u32_buffer(sketch_obj, &sketch, &nsk) < 0)
        goto done;
    Py_ssize_t most = ntitle + nbody + 1;
    picked = PyMem_Malloc((2 * most + posting_words + posting_words_full + posting_shingles) * sizeof(uint32_t));
    scratch = PyMem_Malloc(most * sizeof(Rare));
    units = PyMem_Malloc((2 * most + nbig + nsk + 1) * sizeof(uint16_t));
    all = PyMem_Malloc(most * sizeof(uint32_t)); /* the words counted below: the body array is filtered first */
    if (!picked || !scratch || !units || !all) { PyErr_NoMemory(); goto done; }
    memcpy(all, title, ntitle * sizeof(uint32_t));
    memcpy(all + ntitle, body, nbody * sizeof(uint32_t));
    int full = nsk > 0;
    /* Stored features, rarest first beyond their caps (frequencies before this article is counted). */
    Py_ssize_t kt = pick_rarest(title, ntitle, title_cap, table, mask, picked, scratch);
    Py_ssize_t kb = pick_rarest(body, nbody, full ? body_cap_full : body_cap, table, mask, picked + kt, scratch);
    Py_ssize_t kg = nbig < bigram_cap ? nbig : bigram_cap;
    Py_ssize_t nunits = 0;
    memcpy(units, picked, (kt + kb) * sizeof(uint32_t)); /* each 32-bit hash as two units, in the machine's order */
    nunits = 2 * (kt + kb);
    for (Py_ssize_t i = 0; i < kg; i++) units[nunits++] = (uint16_t)bigrams[i];
    for (Py_ssize_t i = 0; i < nsk; i++) units[nunits++] = (uint16_t)(sketch[i] & 0xFFFF);
    /* Posting keys: the rarest headline words, then the rarest other words, then the first shingles. */
    Py_ssize_t cap = full ? posting_words_full : posting_words;
    uint32_t *keys = picked + kt + kb;
    Py_ssize_t nkeys = pick_rarest(title, ntitle, cap, table, mask, keys, scratch);
    if (nkeys < cap) {
        Py_ssize_t nrest = 0;
        for (Py_ssize_t i = 0; i < nbody; i++)
            if (!in_sorted(title, ntitle, body[i])) body[nrest++] = body[i];
        nkeys += pick_rarest(body, nrest, cap - nkeys, table, mask, keys + nkeys, scratch);
    }
    for (Py_ssize_t i = 0; i < nsk && i < posting_shingles; i++) keys[nkeys++] = sketch[i] ^ (uint32_t)salt;
    if (p.n + nkeys > p.room) { PyErr_SetString(PyExc_OverflowError, "postings buffer full: merge first"); goto done; }
    Py_ssize_t off = PyObject_Length(flat);
    if (off < 0) goto done;
    unsigned long values[N_COLS] = {t, story, outlet, (unsigned long)off, (unsigned long)kt,
                                    (unsigned long)kb, (unsigned long)nsk, (unsigned long)kg,
                                    full ? (unsigned long)(size < 65535 ? size : 65535) : (unsigned long)(has_body != 0)};
    for (int i = 0; i < N_COLS; i++)
        if (append_value(PyTuple_GET_ITEM(cols, i), values[i]) < 0) goto done;
    raw = PyBytes_FromStringAndSize((const char *)units, nunits * sizeof(uint16_t));
    if (!raw) goto done;
    r = PyObject_CallMethodOneArg(flat, str_frombytes, raw);
    if (!r) goto done;
    for (Py_ssize_t i = 0; i < nkeys; i++) pending_put(&p, keys[i], (uint32_t)slot);
    /* Frequencies.count: each table entry the article's distinct words (bigrams) fall on gains one. */
    Py_buffer bt;
    float *btable;
    uint32_t bmask;
    if (open_table(bigram_table_obj, &bt, &btable, &bmask) < 0) goto done;
    count_into(table, mask, all, ntitle + nbody);
    count_into(btable, bmask, bigrams, nbig);
    PyBuffer_Release(&bt);
    out = PyLong_FromSsize_t(nkeys);
done:
    Py_XDECREF(raw); Py_XDECREF(r);
    PyMem_Free(title); PyMem_Free(body); PyMem_Free(bigrams); PyMem_Free(sketch); PyMem_Free(picked);
    PyMem_Free(all); PyMem_Free(units); PyMem_Free(scratch);
    PyBuffer_Release(&tb);
    pending_close(&p);
    return out;
}

/* ---- memory ---------------------------------------------------------------------------------------- */

/* Give free heap pages back to the OS. The index replaces arrays of tens of megabytes when it merges or
 * compacts; glibc keeps the freed space resident otherwise (about 100 bytes per indexed article at a
 * million, more than a third of what the index itself holds). */
static PyObject *release_memory(PyObject *self, PyObject *noargs) {
#ifdef __GLIBC__
    return PyBool_FromLong(malloc_trim(0));
#else
    Py_RETURN_FALSE;
#endif
}

/* ---- module --------------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"word_features", word_features, METH_VARARGS,
     "word_features(normalised_text, cut, bigrams) -> (forms, bigrams or None, forms sorted, bigrams sorted or None): "
     "dedup_text.forms/bigrams of dedup_text.words(text, cut), for text already NFKC-normalised and lower-cased; "
     "the sorted ones as uint32 bytes of the distinct hashes."},
    {"shingles", shingles, METH_VARARGS,
     "shingles(text, pool) -> (distinct uint32 in first-seen order, the pool smallest ascending) as bytes: "
     "dedup_text.shingle_hashes."},
    {"multimap_count", multimap_count, METH_VARARGS,
     "multimap_count(low_keys, vals, starts, pending, query) -> list of counts: dedup_tables.Postings.count."},
    {"sketch_keep", sketch_keep, METH_VARARGS,
     "sketch_keep(low_keys, vals, starts, pending, pool, salt, common, k) -> uint32 hashes as bytes: "
     "dedup_index.Index.sketch_of."},
    {"candidates", candidates, METH_VARARGS,
     "candidates(low_keys, vals, starts, pending, query, caps, times, t, window, limit, crowd, min_hits) -> slots: "
     "dedup_index.Index.candidates over the postings multimap."},
    {"shares_inside", shares_inside, METH_VARARGS,
     "shares_inside(shingles, flat16, columns, slots) -> shares: dedup_index.Index.shares_inside."},
    {"first_u64", first_u64, METH_VARARGS,
     "first_u64(keys, vals, buffer, key) -> value or None: dedup_tables.Multimap.first for uint64 keys."},
    {"rarest", rarest, METH_VARARGS,
     "rarest(table, hashes, cap) -> list: dedup_index._rarest with frequencies from a Frequencies table."},
    {"multimap_add", multimap_add, METH_VARARGS,
     "multimap_add(buffer, keys, value): dedup_tables.Multimap.add's buffering, with lists the GC does not walk."},
    {"postings_merge", postings_merge, METH_VARARGS,
     "postings_merge(low_keys, vals, starts, pending, out_low_keys, out_vals, out_starts) -> entries written: "
     "dedup_tables.Postings.merge into preallocated arrays."},
    {"place_full", place_full, METH_VARARGS,
     "place_full(low_keys, vals, starts, pending, columns, flat16, word_table, title, body, pool, shingles, size, "
     "outlet, t, roundups, roundup, params) -> (story, None for a new one or -1 for undecided; sketch as uint32 bytes): "
     "dedup.Grouper._full_text_story."},
    {"index_add", index_add, METH_VARARGS,
     "index_add(columns, flat16, word_table, bigram_table, pending, title, body, bigrams, sketch (uint32 array), slot, "
     "t, story, outlet, has_body, size, params) -> posting keys added: dedup_index.Index.add but for ids, decay and clock."},
    {"release_memory", release_memory, METH_NOARGS,
     "release_memory() -> bool: malloc_trim(0) on glibc (True if memory was given back), else False."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dedup_core",
                                    "Compiled twins of grouping's hot functions.", -1, methods};

PyMODINIT_FUNC PyInit__dedup_core(void) {
    crc_init();
    unit_map_init();
    if (particles_init() < 0) return NULL;
    str_append = PyUnicode_InternFromString("append");
    str_frombytes = PyUnicode_InternFromString("frombytes");
    if (!str_append || !str_frombytes) return NULL;
    return PyModule_Create(&module);
}
