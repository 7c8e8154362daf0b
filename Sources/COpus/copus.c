#include "copus.h"

int copus_set_bitrate(OggOpusEnc *enc, opus_int32 bitrate) {
    return ope_encoder_ctl(enc, OPUS_SET_BITRATE(bitrate));
}

int copus_set_complexity(OggOpusEnc *enc, opus_int32 complexity) {
    return ope_encoder_ctl(enc, OPUS_SET_COMPLEXITY(complexity));
}

int copus_set_serialno(OggOpusEnc *enc, opus_int32 serialno) {
    return ope_encoder_ctl(enc, OPE_SET_SERIALNO(serialno));
}
