"""A stand-in worker written with grpcio, to run behind our LB in tests.

It answers GetSalesMetrics without a database: count 1, revenue = the
milliseconds left before the call's deadline as the server saw it (-1 for no
deadline, so tests can check that the LB propagates deadlines), and
region_processed = --id. GetSystemStats and grpc.health.v1.Health/Check are
answered too. --delay makes every GetSalesMetrics call take that long, for
balancing tests that need one deterministically slow worker; --health-delay
does the same to Health/Check, for a worker that is up but does not answer
its health checks in time.

Stubs (sales_pb2, health_pb2, ...) must be importable: the test generates them
with grpc_tools.protoc and puts their directory on PYTHONPATH.
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


class Simulation(sales_pb2_grpc.SimulationServiceServicer):
    def __init__(self, worker_id, delay):
        self.worker_id = worker_id
        self.delay = delay
        self.in_flight = 0
        self.lock = threading.Lock()

    def GetSalesMetrics(self, request, context):
        with self.lock:
            self.in_flight += 1
        try:
            if self.delay > 0:
                time.sleep(self.delay)
            remaining = context.time_remaining()
            revenue = -1 if remaining is None else int(remaining * 1000)
            return sales_pb2.SalesResponse(
                total_sales_count=1,
                total_revenue=revenue,
                average_amount=float(revenue),
                region_processed=self.worker_id,
            )
        finally:
            with self.lock:
                self.in_flight -= 1

    def GetSystemStats(self, request, context):
        return sales_pb2.SystemStats(
            cpu_usage=0.0, memory_usage=1, active_goroutines=self.in_flight
        )


class Health(health_pb2_grpc.HealthServicer):
    def __init__(self, delay):
        self.delay = delay

    def Check(self, request, context):
        if self.delay > 0:
            time.sleep(self.delay)
        return health_pb2.HealthCheckResponse(
            status=health_pb2.HealthCheckResponse.SERVING
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--id", default="grpcio-worker")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per GetSalesMetrics")
    parser.add_argument("--health-delay", type=float, default=0.0, help="seconds per Health/Check")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    sales_pb2_grpc.add_SimulationServiceServicer_to_server(
        Simulation(args.id, args.delay), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(Health(args.health_delay), server)
    if server.add_insecure_port(f"127.0.0.1:{args.port}") == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    server.start()
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
