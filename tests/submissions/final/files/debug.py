from kafka import KafkaConsumer

import report_pb2

broker = 'localhost:9092'

consumer = KafkaConsumer(bootstrap_servers=[broker], group_id="debug")
consumer.subscribe(["temperatures"])

# no seek to the beginning: only messages sent from now on
for message in consumer:
    report = report_pb2.Report.FromString(message.value)
    print({'partition': message.partition, 'key': message.key.decode("utf-8"),
           'date': report.date, 'degrees': report.degrees})
