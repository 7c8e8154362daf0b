#ifndef COPUS_H
#define COPUS_H
/* Ogg Opus files: libopusenc (encode + mux) for recordings and output files,
 * libopusfile (demux + decode) for input files. Internal: hidden from libmillis.so's
 * exports by the version script. */
#include <opus/opusenc.h>
#include <opus/opusfile.h>

/* ope_encoder_ctl is variadic, which Swift cannot call: the two requests we use. */
int copus_set_bitrate(OggOpusEnc *enc, opus_int32 bitrate);
int copus_set_complexity(OggOpusEnc *enc, opus_int32 complexity);
/* Before the first write: otherwise libopusenc draws the Ogg serial number from rand(),
 * the same in every process, and moves the application's rand() sequence. */
int copus_set_serialno(OggOpusEnc *enc, opus_int32 serialno);
#endif
