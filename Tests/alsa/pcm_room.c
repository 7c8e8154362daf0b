/*
 * pcm_room.c - an ALSA capture filter that turns what a microphone records into what it
 * would record in a room: the echo bed of bench/echo (bench/README.md, "Echo
 * cancellation"), paced by a real sound server instead of computed.
 *
 * Over a capture slave that records the speaker itself (PulseAudio's null sink monitor):
 * each sample goes through a loudspeaker's soft clipping (tanh), the room's impulse
 * response (a file: reverberation and the coupling gain), a clock drift (the capture
 * clock `drift_ppm` fast: the echo comes later by that fraction of the elapsed time,
 * by windowed-sinc interpolation), then a near-end track (the user's voice, a file
 * played from the stream's start) is added. 16 kHz, mono, S16_LE only.
 *
 *     gcc -shared -fPIC -O3 -ffast-math -o libasound_module_pcm_room.so pcm_room.c -lasound -lm
 *
 *     pcm_type.room { lib "/abs/libasound_module_pcm_room.so" }
 *     pcm.room_mic { type room  slave.pcm "pulse"  ir "/abs/ir.f32"  near "/abs/user.raw"
 *                    drift_ppm 100  drive 2.0 }
 *
 * ir: raw float32 little-endian taps at 16 kHz (up to 32768); near: raw S16_LE mono 16 kHz
 * (optional); drift_ppm: 0 to 10000 (default 0); drive: the clipping's drive (default 2:
 * tanh(drive·x)/drive, unity gain at low level). The convolution is direct (the room's
 * few thousand taps per sample): a few per cent of a core, on the reading thread.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PIC
#define PIC
#endif
#include <alsa/asoundlib.h>
#include <alsa/pcm_external.h>

#define RATE 16000
#define MAX_TAPS 32768
/* Input kept for the convolution: the taps, then up to CHUNK new samples. */
#define CHUNK 4096
/* The room's output kept for the drift's interpolation (a power of two): 4 s, 11 hours
 * of drift at 100 ppm. */
#define HISTORY 65536
#define HALF 16

struct room {
	snd_pcm_extplug_t ext;
	float *taps;          /* reversed: a dot product with the input in time order */
	unsigned int ntaps;
	float *input;         /* ntaps - 1 + CHUNK samples, the oldest first */
	float *history;       /* the room's output, a ring of HISTORY */
	unsigned long long produced; /* samples of room output so far */
	short *near;
	size_t nnear;
	double cos_k[2 * HALF + 1], sin_k[2 * HALF + 1]; /* cos, sin of πk/HALF */
	double drift;         /* ppm · 1e-6 */
	double drive;
};

static void *read_file(const char *path, size_t *bytes)
{
	FILE *f = fopen(path, "rb");
	void *data = NULL;
	long size;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		data = malloc((size_t)size);
		if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
			free(data);
			data = NULL;
		}
		*bytes = (size_t)size;
	}
	fclose(f);
	return data;
}

/* The room's output at fractional sample position p (p + HALF < produced), by a
 * Hann-windowed sinc over 2·HALF samples. sin(π(k − f)) = −(−1)^k sin(πf) and the
 * window's cosine splits the same way: three sines a sample, not one per tap. */
static float interpolate(const struct room *r, double p)
{
	long long base = (long long)floor(p);
	double frac = p - (double)base;
	double sf = sin(M_PI * frac), cf = cos(M_PI * frac / HALF), sh = sin(M_PI * frac / HALF);
	float sum = 0;
	int k;

	for (k = -HALF + 1; k <= HALF; k++) {
		long long i = base + k;
		double d = k - frac, sinc, window;

		if (i < 0)
			continue;
		window = 0.5 + 0.5 * (r->cos_k[k + HALF] * cf + r->sin_k[k + HALF] * sh);
		sinc = fabs(d) < 1e-9 ? 1.0 : -((k & 1) ? -1.0 : 1.0) * sf / (M_PI * d);
		sum += (float)(sinc * window) * r->history[i & (HISTORY - 1)];
	}
	return sum;
}

static void process(struct room *r, const short *in, short *out, snd_pcm_uframes_t n,
		    unsigned long long first)
{
	unsigned int keep = r->ntaps - 1;
	snd_pcm_uframes_t i;
	unsigned int k;

	for (i = 0; i < n; i++) {
		float x = in[i] / 32768.0f;

		r->input[keep + i] = (float)(tanh(r->drive * x) / r->drive);
	}
	for (i = 0; i < n; i++) {
		const float *window = r->input + i;
		float y = 0;

		for (k = 0; k < r->ntaps; k++)
			y += r->taps[k] * window[k];
		r->history[r->produced++ & (HISTORY - 1)] = y;
	}
	memmove(r->input, r->input + n, keep * sizeof(float));
	for (i = 0; i < n; i++) {
		unsigned long long index = first + i;
		/* The echo a capture clock `drift` fast hears: the room's output HALF samples
		 * back (the interpolation's reach) and later by drift · elapsed. */
		double p = (double)index - HALF - r->drift * (double)index;
		float v = interpolate(r, p) * 32768.0f;

		if (index < r->nnear)
			v += r->near[index];
		out[i] = (short)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : lrintf(v));
	}
}

static snd_pcm_sframes_t room_transfer(snd_pcm_extplug_t *ext,
				       const snd_pcm_channel_area_t *dst_areas, snd_pcm_uframes_t dst_offset,
				       const snd_pcm_channel_area_t *src_areas, snd_pcm_uframes_t src_offset,
				       snd_pcm_uframes_t size)
{
	struct room *r = ext->private_data;
	const short *src = (const short *)((const char *)src_areas->addr + src_areas->first / 8) + src_offset;
	short *dst = (short *)((char *)dst_areas->addr + dst_areas->first / 8) + dst_offset;
	snd_pcm_uframes_t done = 0;

	while (done < size) {
		snd_pcm_uframes_t n = size - done > CHUNK ? CHUNK : size - done;

		process(r, src + done, dst + done, n, r->produced);
		done += n;
	}
	return (snd_pcm_sframes_t)size;
}

static int room_hw_params(snd_pcm_extplug_t *ext, snd_pcm_hw_params_t *params)
{
	(void)params;
	if (ext->rate != RATE) {
		SNDERR("room: %u Hz refused (the room runs at 16000 Hz)", ext->rate);
		return -EINVAL;
	}
	return 0;
}

static int room_close(snd_pcm_extplug_t *ext)
{
	struct room *r = ext->private_data;

	free(r->taps);
	free(r->input);
	free(r->history);
	free(r->near);
	free(r);
	return 0;
}

static const snd_pcm_extplug_callback_t room_callback = {
	.transfer = room_transfer,
	.close = room_close,
	.hw_params = room_hw_params,
};

static int load_taps(struct room *r, const char *path)
{
	size_t bytes = 0;
	float *raw = read_file(path, &bytes);
	unsigned int i;

	if (!raw || bytes < sizeof(float) || bytes % sizeof(float) || bytes / sizeof(float) > MAX_TAPS) {
		SNDERR("room: ir '%s' must be 1 to %d float32 taps", path, MAX_TAPS);
		free(raw);
		return -EINVAL;
	}
	r->ntaps = (unsigned int)(bytes / sizeof(float));
	r->taps = malloc(r->ntaps * sizeof(float));
	r->input = calloc(r->ntaps - 1 + CHUNK, sizeof(float));
	if (!r->taps || !r->input) {
		free(raw);
		return -ENOMEM;
	}
	for (i = 0; i < r->ntaps; i++)
		r->taps[i] = raw[r->ntaps - 1 - i];
	free(raw);
	return 0;
}

SND_PCM_PLUGIN_DEFINE_FUNC(room)
{
	snd_config_iterator_t i, next;
	snd_config_t *slave = NULL;
	const char *ir = NULL, *near = NULL;
	struct room *r;
	unsigned int format = SND_PCM_FORMAT_S16_LE;
	int err;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->drive = 2.0;
	for (int k = -HALF; k <= HALF; k++) {
		r->cos_k[k + HALF] = cos(M_PI * k / HALF);
		r->sin_k[k + HALF] = sin(M_PI * k / HALF);
	}
	snd_config_for_each(i, next, conf) {
		snd_config_t *n = snd_config_iterator_entry(i);
		const char *id;
		double v;

		if (snd_config_get_id(n, &id) < 0)
			continue;
		if (!strcmp(id, "comment") || !strcmp(id, "type") || !strcmp(id, "hint"))
			continue;
		if (!strcmp(id, "slave")) {
			slave = n;
		} else if (!strcmp(id, "ir") && snd_config_get_string(n, &ir) >= 0) {
		} else if (!strcmp(id, "near") && snd_config_get_string(n, &near) >= 0) {
		} else if (!strcmp(id, "drift_ppm") && snd_config_get_ireal(n, &v) >= 0 && v >= 0 && v <= 10000) {
			r->drift = v * 1e-6;
		} else if (!strcmp(id, "drive") && snd_config_get_ireal(n, &v) >= 0 && v > 0 && v <= 100) {
			r->drive = v;
		} else {
			SNDERR("room: bad or unknown field %s", id);
			err = -EINVAL;
			goto fail;
		}
	}
	if (!slave || !ir || stream != SND_PCM_STREAM_CAPTURE) {
		SNDERR("room: a capture PCM with a slave and an ir");
		err = -EINVAL;
		goto fail;
	}
	err = load_taps(r, ir);
	if (err < 0)
		goto fail;
	r->history = calloc(HISTORY, sizeof(float));
	if (!r->history) {
		err = -ENOMEM;
		goto fail;
	}
	if (near) {
		size_t bytes = 0;

		r->near = read_file(near, &bytes);
		if (!r->near) {
			SNDERR("room: cannot read near '%s'", near);
			err = -EINVAL;
			goto fail;
		}
		r->nnear = bytes / sizeof(short);
	}
	r->ext.version = SND_PCM_EXTPLUG_VERSION;
	r->ext.name = "libmillis room plugin";
	r->ext.callback = &room_callback;
	r->ext.private_data = r;
	err = snd_pcm_extplug_create(&r->ext, name, root, slave, stream, mode);
	if (err < 0)
		goto fail;
	/* from here on the PCM owns r (freed by room_close) */
	err = snd_pcm_extplug_set_param_list(&r->ext, SND_PCM_EXTPLUG_HW_FORMAT, 1, &format);
	if (err >= 0)
		err = snd_pcm_extplug_set_slave_param_list(&r->ext, SND_PCM_EXTPLUG_HW_FORMAT, 1, &format);
	if (err >= 0)
		err = snd_pcm_extplug_set_param(&r->ext, SND_PCM_EXTPLUG_HW_CHANNELS, 1);
	if (err >= 0)
		err = snd_pcm_extplug_set_slave_param(&r->ext, SND_PCM_EXTPLUG_HW_CHANNELS, 1);
	if (err >= 0)
		err = snd_pcm_extplug_set_param_link(&r->ext, SND_PCM_EXTPLUG_HW_FORMAT, 1);
	if (err >= 0)
		err = snd_pcm_extplug_set_param_link(&r->ext, SND_PCM_EXTPLUG_HW_CHANNELS, 1);
	if (err < 0) {
		snd_pcm_extplug_delete(&r->ext);
		return err;
	}
	*pcmp = r->ext.pcm;
	return 0;

fail:
	free(r->taps);
	free(r->input);
	free(r->history);
	free(r->near);
	free(r);
	return err;
}

SND_PCM_PLUGIN_SYMBOL(room);
