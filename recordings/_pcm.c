/* recordings._pcm: the sum of squares and the waveform peaks of 16-bit little-endian PCM,
 * in one pass over the samples with the GIL released once.
 *
 * Why C: with NumPy the same figures took a dozen or more calls per file (convert, square
 * and sum, max, min), three passes over the samples, and every call gave the GIL up and had
 * to get it back. Beside the event loop's database work, getting it back waited up to the
 * switch interval each time. In the ingest this was ~0.6 ms of CPU per two-minute call;
 * this takes ~0.1 ms (bench/recording_ingest.py, docs/recordings.md).
 *
 * Built by `pip install -e .` (`make install`), next to this file; see setup.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* One little-endian sample; compilers turn this into a plain load on x86 and ARM. */
static inline int32_t sample_at(const unsigned char *bytes, Py_ssize_t index) {
    return (int16_t)(uint16_t)(bytes[2 * index] | (bytes[2 * index + 1] << 8));
}

typedef struct {
    int32_t high, low;
    uint64_t squares;
} Span;

/* Scalar: the reference, and the ends of a span that SSE2 leaves over. */
static void scan_scalar(const unsigned char *bytes, Py_ssize_t from, Py_ssize_t to, Span *span) {
    for (Py_ssize_t i = from; i < to; i++) {
        int32_t x = sample_at(bytes, i);
        if (x > span->high) span->high = x;
        if (x < span->low) span->low = x;
        span->squares += (uint32_t)(x * x);
    }
}

static void scan(const unsigned char *bytes, Py_ssize_t from, Py_ssize_t to, Span *span) {
    span->high = INT16_MIN;
    span->low = INT16_MAX;
    span->squares = 0;
    Py_ssize_t i = from;
#if defined(__SSE2__) && (defined(__x86_64__) || defined(_M_X64))
    /* Eight samples a step (x86 is little-endian, so the bytes are the samples). */
    const __m128i zero = _mm_setzero_si128();
    __m128i high = _mm_set1_epi16(INT16_MIN), low = _mm_set1_epi16(INT16_MAX), sum = zero;
    for (; i + 8 <= to; i += 8) {
        __m128i v = _mm_loadu_si128((const __m128i *)(bytes + 2 * i));
        high = _mm_max_epi16(high, v);
        low = _mm_min_epi16(low, v);
        /* Four sums of two squares: at most 2 * 32768^2 = 2^31, exact as unsigned 32-bit
         * (only -32768 twice reaches 2^31), then widened into two 64-bit sums. */
        __m128i pairs = _mm_madd_epi16(v, v);
        sum = _mm_add_epi64(sum, _mm_unpacklo_epi32(pairs, zero));
        sum = _mm_add_epi64(sum, _mm_unpackhi_epi32(pairs, zero));
    }
    int16_t highs[8], lows[8];
    uint64_t sums[2];
    _mm_storeu_si128((__m128i *)highs, high);
    _mm_storeu_si128((__m128i *)lows, low);
    _mm_storeu_si128((__m128i *)sums, sum);
    for (int k = 0; k < 8; k++) {
        if (highs[k] > span->high) span->high = highs[k];
        if (lows[k] < span->low) span->low = lows[k];
    }
    span->squares = sums[0] + sums[1];
#endif
    scan_scalar(bytes, i, to, span);
}

PyDoc_STRVAR(measure_doc,
"measure(samples, buckets) -> (sum of squares, peaks)\n\n"
"samples: 16-bit little-endian PCM (any contiguous bytes-like object).\n"
"peaks: min(buckets, samples) numbers, the largest |sample| in each of as many equal\n"
"spans; the remainder of the division joins the last span.");

static PyObject *measure(PyObject *Py_UNUSED(module), PyObject *args) {
    Py_buffer view;
    Py_ssize_t buckets;
    if (!PyArg_ParseTuple(args, "y*n:measure", &view, &buckets)) return NULL;
    PyObject *result = NULL;
    int32_t *peaks = NULL;
    if (buckets < 1) {
        PyErr_SetString(PyExc_ValueError, "buckets must be at least 1");
        goto done;
    }
    if (view.len % 2) {
        PyErr_SetString(PyExc_ValueError, "16-bit samples need an even number of bytes");
        goto done;
    }
    Py_ssize_t total = view.len / 2;
    Py_ssize_t count = total < buckets ? total : buckets;
    peaks = PyMem_Malloc(sizeof(int32_t) * (size_t)(count ? count : 1));
    if (!peaks) {
        PyErr_NoMemory();
        goto done;
    }
    uint64_t squares = 0; /* < 2^30 per sample: 2^33 samples before it could overflow */
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *bytes = view.buf;
    Py_ssize_t width = count ? total / count : 0;
    for (Py_ssize_t b = 0; b < count; b++) {
        Py_ssize_t from = b * width, to = b + 1 == count ? total : from + width;
        Span span;
        scan(bytes, from, to, &span);
        squares += span.squares;
        peaks[b] = span.high > -span.low ? span.high : -span.low;
    }
    Py_END_ALLOW_THREADS
    PyObject *list = PyList_New(count);
    if (!list) goto done;
    for (Py_ssize_t b = 0; b < count; b++) {
        PyObject *peak = PyLong_FromLong(peaks[b]);
        if (!peak) {
            Py_DECREF(list);
            goto done;
        }
        PyList_SET_ITEM(list, b, peak);
    }
    PyObject *sum = PyLong_FromUnsignedLongLong(squares);
    if (!sum) {
        Py_DECREF(list);
        goto done;
    }
    result = PyTuple_Pack(2, sum, list);
    Py_DECREF(sum);
    Py_DECREF(list);
done:
    PyMem_Free(peaks);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"measure", measure, METH_VARARGS, measure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "recordings._pcm",
    .m_doc = "Loudness and waveform peaks of 16-bit PCM, in C (see recordings/_pcm.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__pcm(void) { return PyModule_Create(&module); }
