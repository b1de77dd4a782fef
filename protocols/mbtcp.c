/*
 * mbtcp.c - Modbus TCP request building and reply parsing for fc 1-4. The
 * parser checks each field against the request as soon as it has arrived,
 * so the caller's receive loop learns at once whether to wait for more
 * bytes (and how many) or to give up on the connection.
 */
#include "protocols/mbtcp.h"

#include <errno.h>

#include "protocols/bus.h"

#define MBTCP_MAX_REGS 125
#define MBTCP_MAX_BITS 2000
_Static_assert(MBTCP_LEN_MAX < 256, "a length high byte above 0 is too long");
_Static_assert(MBTCP_MBAP_LEN + 2 + 2 * MBTCP_MAX_REGS <= MBTCP_MAX_ADU, "longest reply fits");

bool mbtcp_req_valid(const struct plan_req *req)
{
    bool bits = req->fc == 1 || req->fc == 2;
    int max = bits ? MBTCP_MAX_BITS : MBTCP_MAX_REGS;

    return req->fc >= 1 && req->fc <= 4 && req->count >= 1 && req->count <= max &&
           (int)req->address + req->count <= 65536;
}

size_t mbtcp_build_request(uint8_t buf[MBTCP_REQ_LEN], uint16_t tid, int unit,
                           const struct plan_req *req)
{
    buf[0] = (uint8_t)(tid >> 8);
    buf[1] = (uint8_t)tid;
    buf[2] = 0; /* protocol id: Modbus */
    buf[3] = 0;
    buf[4] = 0; /* length: unit id + 5-byte PDU */
    buf[5] = 6;
    buf[6] = (uint8_t)unit;
    buf[7] = req->fc;
    buf[8] = (uint8_t)(req->address >> 8);
    buf[9] = (uint8_t)req->address;
    buf[10] = (uint8_t)(req->count >> 8);
    buf[11] = (uint8_t)req->count;
    return MBTCP_REQ_LEN;
}

int mbtcp_parse(const uint8_t *buf, size_t len, uint16_t tid, int unit,
                const struct plan_req *req, uint16_t *out, size_t *need)
{
    if (!mbtcp_req_valid(req))
        return -EINVAL;
    bool bits = req->fc == 1 || req->fc == 2;
    size_t data = bits ? ((size_t)req->count + 7) / 8 : 2 * (size_t)req->count;
    /* MBAP, fc, byte count, data; or MBAP, fc | 0x80, exception code. */
    size_t reply_len = MBTCP_MBAP_LEN + 2 + data;
    size_t exc_len = MBTCP_MBAP_LEN + 2;
    size_t frame = 0; /* unknown until the length field is in */

    if (len >= 1 && buf[0] != tid >> 8)
        return -EBADMSG;
    if (len >= 2 && buf[1] != (tid & 0xFF))
        return -EBADMSG;
    if ((len >= 3 && buf[2]) || (len >= 4 && buf[3]))
        return -EBADMSG;
    /* A high length byte above 0 means more than MBTCP_LEN_MAX. */
    if (len >= 5 && buf[4])
        return -EBADMSG;
    if (len >= 6) {
        size_t l = (size_t)buf[4] << 8 | buf[5];
        if (l < MBTCP_LEN_MIN || l > MBTCP_LEN_MAX)
            return -EBADMSG;
        frame = 6 + l;
        if (frame != reply_len && frame != exc_len)
            return -EBADMSG;
    }
    if (len >= 7 && unit != 0 && unit != 255 && buf[6] != unit)
        return -EBADMSG;
    bool exception = false;
    if (len >= 8) {
        if (buf[7] == (req->fc | 0x80))
            exception = true;
        else if (buf[7] != req->fc)
            return -EBADMSG;
        if (frame && frame != (exception ? exc_len : reply_len))
            return -EBADMSG;
    }
    if (len >= 9) {
        if (exception ? buf[8] == 0 : buf[8] != data)
            return -EBADMSG;
    }
    if (!frame || len < frame) {
        *need = frame ? frame : MBTCP_MIN_ADU;
        return 1;
    }
    /* One request is outstanding: anything after its reply is not Modbus. */
    if (len > frame)
        return -EBADMSG;
    if (exception)
        return -(BUS_EXC_BASE + buf[8]);

    const uint8_t *p = buf + MBTCP_MBAP_LEN + 2;
    if (bits) {
        for (size_t i = 0; i < req->count; i++)
            out[i] = (uint16_t)((p[i / 8] >> (i % 8)) & 1);
    } else {
        for (size_t i = 0; i < req->count; i++)
            out[i] = (uint16_t)(p[2 * i] << 8 | p[2 * i + 1]);
    }
    return 0;
}
