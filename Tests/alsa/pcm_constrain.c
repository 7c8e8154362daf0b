/*
 * pcm_constrain.c - ALSA PCM plugins that make a file-backed test device look
 * like a real board which opens exactly one rate, one channel count and a
 * short list of sample formats.
 *
 * Build (no install needed; the asoundrc names the library by path):
 *
 *     gcc -shared -fPIC -O2 -o libasound_module_pcm_constrain.so \
 *         pcm_constrain.c -lasound
 *
 * Two PCM types live in this one library:
 *
 *   type constrain        an extplug filter over any slave PCM. It limits the
 *                         client's FORMAT and CHANNELS (hw_refine, so
 *                         --dump-hw-params and snd_pcm_hw_params_test_*() see
 *                         the limits), gives the slave the very same params,
 *                         and copies the audio through unchanged. The extplug
 *                         API cannot limit RATE during hw_refine (alsa-lib's
 *                         extplug only knows FORMAT and CHANNELS), so a `rate`
 *                         given here is enforced when hw_params is applied
 *                         (snd_pcm_hw_params() fails with -EINVAL), and the
 *                         refine-time rate limit comes from the slave chain:
 *
 *   type constrain_null   an ioplug end point that behaves like the stock
 *                         `null` PCM (playback is discarded, capture delivers
 *                         silence, no pacing: time does not pass) but that
 *                         refines RATE (and optionally CHANNELS/FORMAT) like
 *                         hardware would. Put it under a `file` PCM.
 *
 * A full constrained capture device (what Tests/python/audio_bed.py writes):
 *
 *     pcm_type.constrain      { lib "/abs/libasound_module_pcm_constrain.so" }
 *     pcm_type.constrain_null { lib "/abs/libasound_module_pcm_constrain.so" }
 *     pcm.cap44_end  { type constrain_null  rate 44100 }
 *     pcm.cap44_file { type file  slave.pcm "cap44_end"  file "/dev/null"
 *                      infile "/abs/in.raw"  format "raw" }
 *     pcm.cap44      { type constrain  slave.pcm "cap44_file"
 *                      rate 44100  channels 2  formats [ "S16_LE" ] }
 *
 * Keys of both types (each optional; an absent key leaves that param free):
 *     rate INT                  the one rate the device opens
 *     channels INT              the one channel count
 *     formats [ STR ... ]       accepted sample formats (or one STR);
 *     format STR                alias for a one-entry `formats`
 * `constrain` also needs `slave` (slave.pcm NAME or a slave { pcm ... } block).
 */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>

/* alsa-lib's headers declare the plugin entry points as dlsym-able symbols
 * only when PIC is defined (else they expect static linking into libasound
 * and fail to load with "undefined symbol: snd_dlsym_start"). gcc -fPIC does
 * not define PIC by itself. */
#ifndef PIC
#define PIC
#endif
#include <alsa/asoundlib.h>
#include <alsa/pcm_external.h>

#define MAX_FORMATS 64

/* --------------------------------------------------------------------- */
/* shared configuration parsing                                          */
/* --------------------------------------------------------------------- */

struct limits {
	unsigned int rate;      /* 0: any */
	unsigned int channels;  /* 0: any */
	unsigned int nformats;  /* 0: any */
	unsigned int formats[MAX_FORMATS];
	unsigned int paced;     /* constrain_null: 1 = run on the clock, report xruns */
};

static int add_format(struct limits *lim, const char *plugin, const char *name)
{
	snd_pcm_format_t f = snd_pcm_format_value(name);

	if (f == SND_PCM_FORMAT_UNKNOWN) {
		SNDERR("%s: unknown sample format '%s'", plugin, name);
		return -EINVAL;
	}
	if (lim->nformats >= MAX_FORMATS) {
		SNDERR("%s: too many formats", plugin);
		return -EINVAL;
	}
	lim->formats[lim->nformats++] = (unsigned int)f;
	return 0;
}

static int parse_uint(snd_config_t *n, const char *plugin, const char *id,
		      unsigned int *out)
{
	long v;

	if (snd_config_get_integer(n, &v) < 0 || v <= 0) {
		SNDERR("%s: %s must be a positive integer", plugin, id);
		return -EINVAL;
	}
	*out = (unsigned int)v;
	return 0;
}

static int parse_formats(snd_config_t *n, const char *plugin,
			 struct limits *lim)
{
	const char *s;
	int err;

	if (snd_config_get_type(n) == SND_CONFIG_TYPE_COMPOUND) {
		snd_config_iterator_t i, next;

		snd_config_for_each(i, next, n) {
			snd_config_t *e = snd_config_iterator_entry(i);

			if (snd_config_get_string(e, &s) < 0) {
				SNDERR("%s: formats entries must be strings",
				       plugin);
				return -EINVAL;
			}
			err = add_format(lim, plugin, s);
			if (err < 0)
				return err;
		}
		if (lim->nformats == 0) {
			SNDERR("%s: empty formats list", plugin);
			return -EINVAL;
		}
		return 0;
	}
	if (snd_config_get_string(n, &s) < 0) {
		SNDERR("%s: formats must be a string or a list of strings",
		       plugin);
		return -EINVAL;
	}
	return add_format(lim, plugin, s);
}

/* Parses rate/channels/formats/format and, when slave != NULL, slave.
 * Returns 0, or a negative errno for a bad or unknown key. */
static int parse_conf(snd_config_t *conf, const char *plugin,
		      struct limits *lim, snd_config_t **slave)
{
	snd_config_iterator_t i, next;
	int err;

	memset(lim, 0, sizeof(*lim));
	snd_config_for_each(i, next, conf) {
		snd_config_t *n = snd_config_iterator_entry(i);
		const char *id;

		if (snd_config_get_id(n, &id) < 0)
			continue;
		if (strcmp(id, "comment") == 0 || strcmp(id, "type") == 0 ||
		    strcmp(id, "hint") == 0)
			continue;
		if (slave && strcmp(id, "slave") == 0) {
			*slave = n;
			continue;
		}
		if (strcmp(id, "rate") == 0) {
			err = parse_uint(n, plugin, id, &lim->rate);
		} else if (strcmp(id, "channels") == 0) {
			err = parse_uint(n, plugin, id, &lim->channels);
		} else if (!slave && strcmp(id, "paced") == 0) {
			err = parse_uint(n, plugin, id, &lim->paced);
		} else if (strcmp(id, "formats") == 0 ||
			   strcmp(id, "format") == 0) {
			err = parse_formats(n, plugin, lim);
		} else {
			SNDERR("%s: unknown field %s", plugin, id);
			err = -EINVAL;
		}
		if (err < 0)
			return err;
	}
	return 0;
}

/* --------------------------------------------------------------------- */
/* type constrain: extplug pass-through filter                            */
/* --------------------------------------------------------------------- */

struct constrain {
	snd_pcm_extplug_t ext;
	struct limits lim;
};

static snd_pcm_sframes_t
constrain_transfer(snd_pcm_extplug_t *ext,
		   const snd_pcm_channel_area_t *dst_areas,
		   snd_pcm_uframes_t dst_offset,
		   const snd_pcm_channel_area_t *src_areas,
		   snd_pcm_uframes_t src_offset,
		   snd_pcm_uframes_t size)
{
	/* client and slave share format and channels (linked in refine) */
	snd_pcm_areas_copy(dst_areas, dst_offset, src_areas, src_offset,
			   ext->channels, size, ext->format);
	return (snd_pcm_sframes_t)size;
}

static int constrain_hw_params(snd_pcm_extplug_t *ext,
			       snd_pcm_hw_params_t *params)
{
	struct constrain *c = ext->private_data;
	(void)params;

	/* The extplug API cannot refine RATE: refuse a rate outside the
	 * configuration here, before any audio moves. */
	if (c->lim.rate && ext->rate != c->lim.rate) {
		SNDERR("constrain: rate %u Hz refused (device opens only %u Hz)",
		       ext->rate, c->lim.rate);
		return -EINVAL;
	}
	if (ext->format != ext->slave_format ||
	    ext->channels != ext->slave_channels) {
		SNDERR("constrain: client and slave params differ");
		return -EINVAL;
	}
	return 0;
}

static int constrain_close(snd_pcm_extplug_t *ext)
{
	free(ext->private_data);
	return 0;
}

static void constrain_dump(snd_pcm_extplug_t *ext, snd_output_t *out)
{
	struct constrain *c = ext->private_data;
	unsigned int i;

	snd_output_printf(out, "Constrain PCM (rate %u, channels %u, formats",
			  c->lim.rate, c->lim.channels);
	for (i = 0; i < c->lim.nformats; i++)
		snd_output_printf(out, " %s",
				  snd_pcm_format_name(c->lim.formats[i]));
	snd_output_printf(out, ")\n");
	if (ext->pcm) {
		snd_pcm_hw_params_t *hw;

		snd_pcm_hw_params_alloca(&hw);
		if (snd_pcm_hw_params_current(ext->pcm, hw) == 0) {
			snd_output_printf(out, "Its setup is:\n");
			snd_pcm_dump_setup(ext->pcm, out);
		}
	}
}

static const snd_pcm_extplug_callback_t constrain_callback = {
	.transfer = constrain_transfer,
	.close = constrain_close,
	.hw_params = constrain_hw_params,
	.dump = constrain_dump,
};

SND_PCM_PLUGIN_DEFINE_FUNC(constrain)
{
	struct constrain *c;
	snd_config_t *slave = NULL;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	err = parse_conf(conf, "constrain", &c->lim, &slave);
	if (err < 0)
		goto fail;
	if (!slave) {
		SNDERR("constrain: no slave defined");
		err = -EINVAL;
		goto fail;
	}

	c->ext.version = SND_PCM_EXTPLUG_VERSION;
	c->ext.name = "libmillis constrain plugin";
	c->ext.callback = &constrain_callback;
	c->ext.private_data = c;

	err = snd_pcm_extplug_create(&c->ext, name, root, slave, stream, mode);
	if (err < 0)
		goto fail;
	/* from here on the PCM owns c (freed by constrain_close) */

	if (c->lim.nformats) {
		err = snd_pcm_extplug_set_param_list(&c->ext,
				SND_PCM_EXTPLUG_HW_FORMAT,
				c->lim.nformats, c->lim.formats);
		if (err >= 0)
			err = snd_pcm_extplug_set_slave_param_list(&c->ext,
				SND_PCM_EXTPLUG_HW_FORMAT,
				c->lim.nformats, c->lim.formats);
	}
	if (err >= 0 && c->lim.channels) {
		err = snd_pcm_extplug_set_param(&c->ext,
				SND_PCM_EXTPLUG_HW_CHANNELS, c->lim.channels);
		if (err >= 0)
			err = snd_pcm_extplug_set_slave_param(&c->ext,
				SND_PCM_EXTPLUG_HW_CHANNELS, c->lim.channels);
	}
	/* The slave gets exactly the client's format and channels: keep the
	 * two sides linked although both have their own lists. */
	if (err >= 0)
		err = snd_pcm_extplug_set_param_link(&c->ext,
				SND_PCM_EXTPLUG_HW_FORMAT, 1);
	if (err >= 0)
		err = snd_pcm_extplug_set_param_link(&c->ext,
				SND_PCM_EXTPLUG_HW_CHANNELS, 1);
	if (err < 0) {
		snd_pcm_extplug_delete(&c->ext);
		return err;
	}
	*pcmp = c->ext.pcm;
	return 0;

fail:
	free(c);
	return err;
}

SND_PCM_PLUGIN_SYMBOL(constrain);

/* --------------------------------------------------------------------- */
/* type constrain_null: unpaced ioplug end point with hardware-like limits */
/* --------------------------------------------------------------------- */

/* Formats accepted when the configuration names none: the linear and
 * float PCM formats (no compressed or special ones). */
static const unsigned int default_formats[] = {
	SND_PCM_FORMAT_S8, SND_PCM_FORMAT_U8,
	SND_PCM_FORMAT_S16_LE, SND_PCM_FORMAT_S16_BE,
	SND_PCM_FORMAT_U16_LE, SND_PCM_FORMAT_U16_BE,
	SND_PCM_FORMAT_S24_LE, SND_PCM_FORMAT_S24_BE,
	SND_PCM_FORMAT_U24_LE, SND_PCM_FORMAT_U24_BE,
	SND_PCM_FORMAT_S32_LE, SND_PCM_FORMAT_S32_BE,
	SND_PCM_FORMAT_U32_LE, SND_PCM_FORMAT_U32_BE,
	SND_PCM_FORMAT_FLOAT_LE, SND_PCM_FORMAT_FLOAT_BE,
	SND_PCM_FORMAT_FLOAT64_LE, SND_PCM_FORMAT_FLOAT64_BE,
	SND_PCM_FORMAT_S24_3LE, SND_PCM_FORMAT_S24_3BE,
	SND_PCM_FORMAT_U24_3LE, SND_PCM_FORMAT_U24_3BE,
};

static const unsigned int access_list[] = {
	SND_PCM_ACCESS_MMAP_INTERLEAVED,
	SND_PCM_ACCESS_MMAP_NONINTERLEAVED,
	SND_PCM_ACCESS_RW_INTERLEAVED,
	SND_PCM_ACCESS_RW_NONINTERLEAVED,
};

struct cnull {
	snd_pcm_ioplug_t io;
	struct limits lim;
	int running;                  /* between start and stop, not paused */
	snd_pcm_uframes_t boundary;   /* hw/appl pointers wrap here */
	/* paced: the pointer follows CLOCK_MONOTONIC from start; the poll fd is a
	 * timerfd that fires once per period, like a sound card's interrupt */
	struct timespec started;
	snd_pcm_uframes_t start_ptr;
};

static snd_pcm_uframes_t cnull_elapsed(struct cnull *n, unsigned int rate)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (now.tv_sec - n->started.tv_sec) * 1000000000LL + (now.tv_nsec - n->started.tv_nsec);
	return (snd_pcm_uframes_t)(ns * (long long)rate / 1000000000LL);
}

static void cnull_arm(snd_pcm_ioplug_t *io, int on)
{
	struct itimerspec t;

	memset(&t, 0, sizeof(t));
	if (on) {
		long long ns = (long long)io->period_size * 1000000000LL / io->rate;
		t.it_value.tv_sec = t.it_interval.tv_sec = ns / 1000000000LL;
		t.it_value.tv_nsec = t.it_interval.tv_nsec = ns % 1000000000LL;
	}
	timerfd_settime(io->poll_fd, 0, &t, NULL);
}

static int cnull_start(snd_pcm_ioplug_t *io)
{
	struct cnull *n = io->private_data;

	n->running = 1;
	if (n->lim.paced) {
		clock_gettime(CLOCK_MONOTONIC, &n->started);
		n->start_ptr = io->hw_ptr;
		cnull_arm(io, 1);
	}
	return 0;
}

static int cnull_stop(snd_pcm_ioplug_t *io)
{
	struct cnull *n = io->private_data;

	n->running = 0;
	if (n->lim.paced)
		cnull_arm(io, 0);
	return 0;
}

/* paced: the timerfd's expirations are consumed here, so poll sleeps until the
 * next period */
static int cnull_poll_revents(snd_pcm_ioplug_t *io, struct pollfd *pfd,
			      unsigned int nfds, unsigned short *revents)
{
	struct cnull *n = io->private_data;
	uint64_t ticks;
	(void)nfds;

	if (!n->lim.paced) {
		*revents = pfd[0].revents;
		return 0;
	}
	*revents = 0;
	if (pfd[0].revents & POLLIN) {
		if (read(io->poll_fd, &ticks, sizeof(ticks)) < 0) { /* EAGAIN: not yet */ }
		*revents = io->stream == SND_PCM_STREAM_PLAYBACK ? POLLOUT : POLLIN;
	}
	return 0;
}

static int cnull_pause(snd_pcm_ioplug_t *io, int enable)
{
	struct cnull *n = io->private_data;

	n->running = !enable;
	return 0;
}

/* No pacing: while running, playback consumes everything written at once and
 * capture always has a full buffer ready. The pointer is returned in
 * boundary units (SND_PCM_IOPLUG_FLAG_BOUNDARY_WA), since a whole buffer can
 * pass between two calls. */
static snd_pcm_sframes_t cnull_pointer(snd_pcm_ioplug_t *io)
{
	struct cnull *n = io->private_data;
	snd_pcm_uframes_t pos;

	if (!n->running || n->boundary == 0)
		return (snd_pcm_sframes_t)io->hw_ptr;
	if (n->lim.paced) {
		/* Time moves the hardware pointer; an application that falls a buffer
		 * behind gets an xrun, as from a sound card. */
		snd_pcm_uframes_t hw = n->start_ptr + cnull_elapsed(n, io->rate);
		if (io->stream == SND_PCM_STREAM_CAPTURE && hw - io->appl_ptr > io->buffer_size)
			return -EPIPE;
		if (io->stream == SND_PCM_STREAM_PLAYBACK && hw > io->appl_ptr)
			return -EPIPE;
		return (snd_pcm_sframes_t)(hw % n->boundary);
	}
	if (io->stream == SND_PCM_STREAM_PLAYBACK)
		pos = io->appl_ptr;
	else
		pos = (io->appl_ptr + io->buffer_size) % n->boundary;
	return (snd_pcm_sframes_t)pos;
}

static snd_pcm_sframes_t cnull_transfer(snd_pcm_ioplug_t *io,
					const snd_pcm_channel_area_t *areas,
					snd_pcm_uframes_t offset,
					snd_pcm_uframes_t size)
{
	/* playback: discard; capture: silence (a `file` PCM above overwrites
	 * it with its infile as long as the infile lasts) */
	if (io->stream == SND_PCM_STREAM_CAPTURE)
		snd_pcm_areas_silence(areas, offset, io->channels, size,
				      io->format);
	return (snd_pcm_sframes_t)size;
}

static int cnull_prepare(snd_pcm_ioplug_t *io)
{
	struct cnull *n = io->private_data;
	snd_pcm_sw_params_t *sw;

	/* called without the PCM lock held */
	snd_pcm_sw_params_alloca(&sw);
	if (snd_pcm_sw_params_current(io->pcm, sw) < 0 ||
	    snd_pcm_sw_params_get_boundary(sw, &n->boundary) < 0)
		return -EINVAL;
	n->running = 0;
	return 0;
}

static int cnull_hw_params(snd_pcm_ioplug_t *io, snd_pcm_hw_params_t *params)
{
	struct cnull *n = io->private_data;
	(void)params;

	/* refine has already limited these; this is a second line */
	if (n->lim.rate && io->rate != n->lim.rate)
		return -EINVAL;
	if (n->lim.channels && io->channels != n->lim.channels)
		return -EINVAL;
	return 0;
}

static int cnull_close(snd_pcm_ioplug_t *io)
{
	struct cnull *n = io->private_data;

	if (io->poll_fd >= 0)
		close(io->poll_fd);
	free(n);
	return 0;
}

static void cnull_dump(snd_pcm_ioplug_t *io, snd_output_t *out)
{
	struct cnull *n = io->private_data;

	snd_pcm_hw_params_t *hw;

	snd_output_printf(out, "Constrained null PCM (rate %u, channels %u)\n",
			  n->lim.rate, n->lim.channels);
	snd_pcm_hw_params_alloca(&hw);
	if (snd_pcm_hw_params_current(io->pcm, hw) == 0) {
		snd_output_printf(out, "Its setup is:\n");
		snd_pcm_dump_setup(io->pcm, out);
	}
}

static const snd_pcm_ioplug_callback_t cnull_callback = {
	.start = cnull_start,
	.stop = cnull_stop,
	.pointer = cnull_pointer,
	.transfer = cnull_transfer,
	.close = cnull_close,
	.hw_params = cnull_hw_params,
	.prepare = cnull_prepare,
	.pause = cnull_pause,
	.dump = cnull_dump,
	.poll_revents = cnull_poll_revents,
};

SND_PCM_PLUGIN_DEFINE_FUNC(constrain_null)
{
	struct cnull *n;
	int fd, err;

	(void)root;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	err = parse_conf(conf, "constrain_null", &n->lim, NULL);
	if (err < 0) {
		free(n);
		return err;
	}
	/* Unpaced: an eventfd with a non-zero count is always readable and
	 * writable: poll() reports the device ready at once, as befits no pacing.
	 * Paced: a timerfd, armed at start. */
	fd = n->lim.paced ? timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)
			  : eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		free(n);
		return err;
	}

	n->io.version = SND_PCM_IOPLUG_VERSION;
	n->io.name = "libmillis constrained null";
	n->io.flags = SND_PCM_IOPLUG_FLAG_BOUNDARY_WA;
	n->io.poll_fd = fd;
	n->io.poll_events = (stream == SND_PCM_STREAM_PLAYBACK && !n->lim.paced) ? POLLOUT : POLLIN;
	n->io.mmap_rw = 0;
	n->io.callback = &cnull_callback;
	n->io.private_data = n;

	err = snd_pcm_ioplug_create(&n->io, name, stream, mode);
	if (err < 0) {
		close(fd);
		free(n);
		return err;
	}
	/* from here on the PCM owns n (freed by cnull_close) */

	err = snd_pcm_ioplug_set_param_list(&n->io, SND_PCM_IOPLUG_HW_ACCESS,
			sizeof(access_list) / sizeof(access_list[0]),
			access_list);
	if (err >= 0) {
		if (n->lim.nformats)
			err = snd_pcm_ioplug_set_param_list(&n->io,
					SND_PCM_IOPLUG_HW_FORMAT,
					n->lim.nformats, n->lim.formats);
		else
			err = snd_pcm_ioplug_set_param_list(&n->io,
					SND_PCM_IOPLUG_HW_FORMAT,
					sizeof(default_formats) /
					sizeof(default_formats[0]),
					default_formats);
	}
	if (err >= 0)
		err = snd_pcm_ioplug_set_param_minmax(&n->io,
				SND_PCM_IOPLUG_HW_CHANNELS,
				n->lim.channels ? n->lim.channels : 1,
				n->lim.channels ? n->lim.channels : 256);
	if (err >= 0)
		err = snd_pcm_ioplug_set_param_minmax(&n->io,
				SND_PCM_IOPLUG_HW_RATE,
				n->lim.rate ? n->lim.rate : 1000,
				n->lim.rate ? n->lim.rate : 768000);
	if (err < 0) {
		snd_pcm_ioplug_delete(&n->io);
		return err;
	}
	*pcmp = n->io.pcm;
	return 0;
}

SND_PCM_PLUGIN_SYMBOL(constrain_null);
