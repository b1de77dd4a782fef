/*
 * fuzz_modbus_reply.c - libFuzzer target for the libmodbus reply path: the
 * bytes a meter sends back, fed to the same libmodbus calls protocols/bus.c
 * makes on an RTU bus (modbus_read_* with error recovery off), through a
 * socketpair standing in for the RS-485 line; the registers of an accepted
 * reply are then decoded as bus.c's caller does (decode_point). This is
 * the boundary where an RTU meter's bytes become values; bus_read adds only
 * connect and errno mapping around these calls. TCP buses no longer go
 * through libmodbus's exchange (bus.c frames TCP itself: fuzz_mbtcp.c
 * covers that parser); the TCP mode here (flags bit 0 clear) still fuzzes
 * libmodbus's TCP reader, kept as the reference for what it accepted. Input: byte 0 flags (bit 0 RTU, bits 1-2 fc-1,
 * bit 3 fix the RTU CRC of the reply so the fuzzer gets past it, bits 4-7
 * point type), byte 1 quantity, byte 2 unit id, then the reply stream, of
 * which up to three requests consume what they find. Invariants: a read
 * returns exactly the quantity or -1; a successful read's values decode.
 */
#include <errno.h>
#include <math.h>
#include <modbus.h>
#include <sys/socket.h>

#include "config/config.h"
#include "protocols/decode.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REPLY 4096

static uint16_t crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > MAX_REPLY + 3)
        return 0;
    uint8_t flags = data[0];
    bool rtu = flags & 1;
    int fc = 1 + ((flags >> 1) & 3);
    bool bits = fc <= 2;
    int count = bits ? 1 + data[1] * 8 : 1 + data[1] % MODBUS_MAX_READ_REGISTERS;
    int unit = 1 + data[2] % 247;
    uint8_t reply[MAX_REPLY];
    size_t n = size - 3;
    memcpy(reply, data + 3, n);
    if (rtu && (flags & 8) && n >= 4) {
        uint16_t c = crc16(reply, n - 2);
        reply[n - 2] = (uint8_t)(c & 0xFF);
        reply[n - 1] = (uint8_t)(c >> 8);
    }

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    if (n && write(sv[1], reply, n) != (ssize_t)n)
        abort();
    /* The peer has said everything: a read past it sees EOF (connection
     * closed), never a timeout, so each input runs in microseconds. */
    shutdown(sv[1], SHUT_WR);

    modbus_t *ctx = rtu ? modbus_new_rtu("/dev/null", 9600, 'E', 8, 1)
                        : modbus_new_tcp("127.0.0.1", 502);
    if (!ctx)
        abort();
    modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE);
    modbus_set_response_timeout(ctx, 0, 50000);
    modbus_set_socket(ctx, sv[0]);
    modbus_set_slave(ctx, unit);

    uint16_t regs[MODBUS_MAX_READ_REGISTERS + 4];
    uint8_t bitbuf[MODBUS_MAX_READ_BITS];
    struct cfg_point pt = {.name = "p", .fc = fc, .scale = 1.0};
    pt.type = bits ? PT_BOOL : (enum point_type)((flags >> 4) % PT_BOOL);
    pt.order = (enum word_order)((flags >> 4) & 3);
    for (int attempt = 0; attempt < 3; attempt++) {
        int rc;
        errno = 0;
        switch (fc) {
        case 1: rc = modbus_read_bits(ctx, 0, count, bitbuf); break;
        case 2: rc = modbus_read_input_bits(ctx, 0, count, bitbuf); break;
        case 3: rc = modbus_read_registers(ctx, 0, count, regs); break;
        default: rc = modbus_read_input_registers(ctx, 0, count, regs); break;
        }
        if (rc < 0) {
            if (rc != -1)
                abort();
            if (errno == ECONNRESET)
                break; /* the stream is used up */
            modbus_flush(ctx); /* as bus_read does after a bad frame */
            continue;
        }
        if (rc != count)
            abort();
        if (bits) {
            for (int i = 0; i < count; i++)
                regs[i % MODBUS_MAX_READ_REGISTERS] = bitbuf[i] ? 1 : 0;
            count = count < MODBUS_MAX_READ_REGISTERS ? count : MODBUS_MAX_READ_REGISTERS;
        }
        int w = point_type_regs(pt.type);
        for (int i = 0; i + w <= count; i += w) {
            double v = 0;
            int r = decode_point(&pt, 1.0, 1.0, regs + i, &v);
            if (r == 0 ? !isfinite(v) : r != -ERANGE)
                abort();
        }
        break;
    }
    modbus_free(ctx);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
