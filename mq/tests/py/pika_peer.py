"""A Python peer of mq-worker, written with pika and the protobuf package.

Reads requests (a JSON list of objects with the seed's request keys) from
stdin, sends each one twice to QUEUE -- as a protobuf SalesRequest
(application/x-protobuf, classes generated from sales.proto by
grpc_tools.protoc into OUT_DIR) and as the seed's JSON (application/json) --
with reply_to amq.rabbitmq.reply-to and a correlation id, waits for every
reply, and prints one JSON object per reply on stdout:

    {"index": i, "encoding": "proto"|"json", "status": int|null,
     "error": str|null, "total_sales_count": ..., "total_revenue": ...,
     "average_amount": ..., "region_processed": ...}

usage: pika_peer.py AMQP_URL QUEUE PROTO_DIR OUT_DIR < requests.json
"""

import json
import subprocess
import sys
import time


def generate(proto_dir, out_dir):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir,
         "--python_out=" + out_dir, "sales.proto"],
        check=True,
    )
    sys.path.insert(0, out_dir)
    import sales_pb2  # noqa: E402  (generated just now)
    return sales_pb2


def main():
    url, queue, proto_dir, out_dir = sys.argv[1:5]
    import pika

    pb = generate(proto_dir, out_dir)
    requests = json.load(sys.stdin)

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    replies = {}

    def on_reply(_ch, _method, props, body):
        replies[props.correlation_id] = (props, body)

    # Direct reply-to: consume (auto-ack) before publishing.
    channel.basic_consume("amq.rabbitmq.reply-to", on_reply, auto_ack=True)

    sent = {}
    for i, req in enumerate(requests):
        msg = pb.SalesRequest(
            region=req.get("region", ""),
            category=req.get("category", ""),
            start_date=req.get("start_date", ""),
            end_date=req.get("end_date", ""),
            min_amount=req.get("min_amount", 0),
            max_amount=req.get("max_amount", 0),
            product_keyword=req.get("product_keyword", ""),
            buyer_keyword=req.get("buyer_keyword", ""),
        )
        if req.get("start_hour") is not None:
            msg.start_hour = req["start_hour"]
        if req.get("end_hour") is not None:
            msg.end_hour = req["end_hour"]
        seed_json = json.dumps({
            "region": req.get("region", ""),
            "category": req.get("category", ""),
            "start_date": req.get("start_date", ""),
            "end_date": req.get("end_date", ""),
            "start_hour": req.get("start_hour"),
            "end_hour": req.get("end_hour"),
            "buyer_keyword": req.get("buyer_keyword", ""),
            "product_keyword": req.get("product_keyword", ""),
            "min_amount": req.get("min_amount", 0),
            "max_amount": req.get("max_amount", 0),
        })
        for encoding, content_type, body in (
            ("proto", "application/x-protobuf", msg.SerializeToString()),
            ("json", "application/json", seed_json.encode()),
        ):
            cid = "py-%d-%s" % (i, encoding)
            sent[cid] = (i, encoding)
            channel.basic_publish(
                exchange="",
                routing_key=queue,
                properties=pika.BasicProperties(
                    reply_to="amq.rabbitmq.reply-to",
                    correlation_id=cid,
                    content_type=content_type,
                ),
                body=body,
            )

    deadline = time.time() + 20
    while len(replies) < len(sent) and time.time() < deadline:
        connection.process_data_events(time_limit=0.1)
    connection.close()

    for cid, (i, encoding) in sent.items():
        if cid not in replies:
            print(json.dumps({"index": i, "encoding": encoding, "missing": True}))
            continue
        props, body = replies[cid]
        headers = props.headers or {}
        out = {"index": i, "encoding": encoding,
               "status": headers.get("x-status"), "error": headers.get("x-error")}
        if isinstance(out["error"], bytes):
            out["error"] = out["error"].decode()
        if out["status"] is None:
            if encoding == "proto":
                rep = pb.SalesResponse.FromString(body)
                out.update(total_sales_count=rep.total_sales_count,
                           total_revenue=rep.total_revenue,
                           average_amount=rep.average_amount,
                           region_processed=rep.region_processed)
            else:
                out.update(json.loads(body))
        elif encoding == "json":
            out["json_error"] = json.loads(body).get("error")
        print(json.dumps(out))


if __name__ == "__main__":
    main()
