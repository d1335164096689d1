"""A stand-in worker written with grpcio, the reference gRPC implementation.

Serves protocol.SimulationService and grpc.health.v1.Health/Check without a
database, so that our Rust client (worker tests) and our LB (lb tests, with
it standing behind the LB) are tested against a server we did not write.
GetSalesMetrics answers fixed values derived from the request:

  total_sales_count = len(region) + 1000 * len(category)
  total_revenue     = min_amount + max_amount
                      + 10**6 * (start_hour + 1 if set else 0)
                      + 10**9 * (end_hour + 1 if set else 0)
  average_amount    = total_revenue / total_sales_count (0.0 when 0)
  region_processed  = --id

and three magic regions: "fail" aborts with INVALID_ARGUMENT and a non-ASCII
message, "slow" sleeps 2 s, "deadline" answers total_revenue = the
milliseconds the server sees before the deadline (-1 without one).
--delay makes every GetSalesMetrics call take that many seconds, for
balancing tests that need one deterministically slow worker;
--health-delay does the same to Health/Check, for a worker that is up but
does not answer its health checks in time; --unavailable makes every
GetSalesMetrics call fail with UNAVAILABLE while Health/Check still answers
SERVING, for a worker that passes its checks but cannot serve.

Usage: grpcio_worker.py --port N --id NAME [--delay SECONDS]
                        [--health-delay SECONDS] [--unavailable]
(--port 0 picks a free port). Prints "listening on 127.0.0.1:PORT" once
serving. Stops gracefully on SIGTERM/SIGINT. The stubs (sales_pb2, health_pb2
and their _grpc modules) must be on PYTHONPATH: generate them with
python -m grpc_tools.protoc -I proto -I proto/grpc/health/v1
  --python_out=DIR --grpc_python_out=DIR sales.proto health.proto
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

import health_pb2
import health_pb2_grpc
import sales_pb2
import sales_pb2_grpc

FAIL_MESSAGE = "region: «fail» was asked to fail, 100% on purpose"


def derived_response(request, worker_id):
    count = len(request.region) + 1000 * len(request.category)
    revenue = request.min_amount + request.max_amount
    if request.HasField("start_hour"):
        revenue += 10**6 * (request.start_hour + 1)
    if request.HasField("end_hour"):
        revenue += 10**9 * (request.end_hour + 1)
    average = revenue / count if count else 0.0
    return sales_pb2.SalesResponse(
        total_sales_count=count,
        total_revenue=revenue,
        average_amount=average,
        region_processed=worker_id,
    )


class Simulation(sales_pb2_grpc.SimulationServiceServicer):
    def __init__(self, worker_id, delay, unavailable):
        self.worker_id = worker_id
        self.delay = delay
        self.unavailable = unavailable
        self.in_flight = 0
        self.lock = threading.Lock()

    def GetSalesMetrics(self, request, context):
        with self.lock:
            self.in_flight += 1
        try:
            if self.delay > 0:
                time.sleep(self.delay)
            if self.unavailable:
                context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable on purpose")
            if request.region == "fail":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, FAIL_MESSAGE)
            if request.region == "slow":
                time.sleep(2.0)
            response = derived_response(request, self.worker_id)
            if request.region == "deadline":
                left = context.time_remaining()
                # grpcio reports "no deadline" as None or as a huge number.
                no_deadline = left is None or left > 10**9
                response.total_revenue = -1 if no_deadline else int(left * 1000)
            return response
        finally:
            with self.lock:
                self.in_flight -= 1

    def GetSystemStats(self, request, context):
        with self.lock:
            in_flight = self.in_flight
        return sales_pb2.SystemStats(cpu_usage=1.5, memory_usage=12345, active_goroutines=in_flight)


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self, delay):
        self.delay = delay

    def Check(self, request, context):
        if self.delay > 0:
            time.sleep(self.delay)
        if request.service not in ("", "protocol.SimulationService"):
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service " + request.service)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per GetSalesMetrics")
    parser.add_argument("--health-delay", type=float, default=0.0, help="seconds per Health/Check")
    parser.add_argument(
        "--unavailable", action="store_true", help="fail every GetSalesMetrics with UNAVAILABLE"
    )
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    sales_pb2_grpc.add_SimulationServiceServicer_to_server(Simulation(args.id, args.delay, args.unavailable), server)
    health_pb2_grpc.add_HealthServicer_to_server(Health(args.health_delay), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    if port == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=5).wait()


if __name__ == "__main__":
    main()
