"""A grpcio client for interop tests: calls the target (our LB) and prints
one JSON object with what it got.

Usage: grpcio_client.py HOST:PORT REQUEST_JSON
REQUEST_JSON holds SalesRequest fields; the output has "metrics" (the
SalesResponse fields), "stats" (SystemStats), "health" (the Health/Check
status name) and "invalid" (the status code name and message of a request
with an unparsable start_date).
"""

import json
import sys

import grpc

import health_pb2
import health_pb2_grpc
import sales_pb2
import sales_pb2_grpc


def main():
    target, request = sys.argv[1], json.loads(sys.argv[2])
    with grpc.insecure_channel(target) as channel:
        sales = sales_pb2_grpc.SimulationServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        metrics = sales.GetSalesMetrics(sales_pb2.SalesRequest(**request), timeout=10)
        stats = sales.GetSystemStats(sales_pb2.Empty(), timeout=10)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
        try:
            sales.GetSalesMetrics(sales_pb2.SalesRequest(start_date="not a date"), timeout=10)
            invalid = None
        except grpc.RpcError as e:
            invalid = {"code": e.code().name, "message": e.details()}
    print(
        json.dumps(
            {
                "metrics": {
                    "total_sales_count": metrics.total_sales_count,
                    "total_revenue": metrics.total_revenue,
                    "average_amount": metrics.average_amount,
                    "region_processed": metrics.region_processed,
                },
                "stats": {
                    "cpu_usage": stats.cpu_usage,
                    "memory_usage": stats.memory_usage,
                    "active_goroutines": stats.active_goroutines,
                },
                "health": health_pb2.HealthCheckResponse.ServingStatus.Name(status.status),
                "invalid": invalid,
            }
        )
    )


if __name__ == "__main__":
    main()
