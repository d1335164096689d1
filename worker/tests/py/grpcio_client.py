"""A grpcio client against our worker: every method, errors and deadlines.

Usage: grpcio_client.py --target HOST:PORT --requests FILE
FILE holds one hex-encoded SalesRequest per line; each answer is printed as
one hex-encoded SalesResponse per line, for the Rust test to compare with
the query engine. Every other check is asserted here; a failed check exits
non-zero with a message on stderr. The stubs must be on PYTHONPATH (see
grpcio_worker.py).
"""

import argparse
import sys

import grpc

import health_pb2
import health_pb2_grpc
import sales_pb2
import sales_pb2_grpc


def expect_error(call, code, contains=""):
    try:
        call()
    except grpc.RpcError as e:
        assert e.code() == code, f"expected {code}, got {e.code()}: {e.details()}"
        assert contains in (e.details() or ""), f"{contains!r} not in {e.details()!r}"
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--requests", required=True)
    args = parser.parse_args()

    with grpc.insecure_channel(args.target) as channel:
        sales = sales_pb2_grpc.SimulationServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        with open(args.requests) as f:
            for line in f:
                request = sales_pb2.SalesRequest.FromString(bytes.fromhex(line.strip()))
                response = sales.GetSalesMetrics(request, timeout=10)
                print(response.SerializeToString().hex(), flush=True)

        for service in ("", "protocol.SimulationService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, reply
        expect_error(
            lambda: health.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=5),
            grpc.StatusCode.NOT_FOUND,
        )

        stats = sales.GetSystemStats(sales_pb2.Empty(), timeout=5)
        assert stats.memory_usage > 1 << 20, stats
        assert stats.cpu_usage >= 0.0, stats

        expect_error(
            lambda: sales.GetSalesMetrics(sales_pb2.SalesRequest(start_date="2024-02-30"), timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "start_date",
        )
        expect_error(
            lambda: sales.GetSalesMetrics(sales_pb2.SalesRequest(start_hour=7, end_hour=3), timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "hour",
        )
        # A deadline that cannot be met: DEADLINE_EXCEEDED, whichever side
        # notices first. grpcio keeps deadlines in whole milliseconds, and a
        # lone query on the test database can answer within one, so the call
        # queues behind a hundred whole-table queries (about a millisecond
        # each even in a release build) that the worker's query threads must
        # get through first. Those still succeed.
        ahead = [sales.GetSalesMetrics.future(sales_pb2.SalesRequest(), timeout=60) for _ in range(100)]
        expect_error(
            lambda: sales.GetSalesMetrics(sales_pb2.SalesRequest(buyer_keyword="an"), timeout=0.001),
            grpc.StatusCode.DEADLINE_EXCEEDED,
        )
        for call in ahead:
            call.result()
        # A generous deadline, parsed correctly by our server.
        sales.GetSalesMetrics(sales_pb2.SalesRequest(), timeout=3600)

        unknown = channel.unary_unary("/protocol.SimulationService/Nope")
        expect_error(lambda: unknown(b"", timeout=5), grpc.StatusCode.UNIMPLEMENTED)

        # Over the 4 MiB limit.
        big = sales_pb2.SalesRequest(product_keyword="x" * (5 << 20))
        expect_error(lambda: sales.GetSalesMetrics(big, timeout=10), grpc.StatusCode.RESOURCE_EXHAUSTED)

        # Still serving after all of that.
        health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    print("ok", file=sys.stderr)


if __name__ == "__main__":
    main()
