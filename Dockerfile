# The p7 image: one Apache Kafka broker (KRaft mode) plus Python with the project's pins.
#   docker build . -t p7
#   docker run -d -p 9092:9092 -v ./files:/files --name=p7 p7
#   docker exec -it p7 python3 /files/producer.py
# The broker starts through the same launcher and config as the native path (broker/); only the
# Kafka download differs: the official binary release instead of Maven Central jars.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# The Kafka version comes from broker/kafka-version, the one file that names it.
COPY broker/kafka-version /opt/p7/broker/kafka-version
RUN KAFKA_VERSION="$(cat /opt/p7/broker/kafka-version)" \
 && curl -fsSL "https://archive.apache.org/dist/kafka/${KAFKA_VERSION}/kafka_2.13-${KAFKA_VERSION}.tgz" \
    | tar -xz -C /opt \
 && mv "/opt/kafka_2.13-${KAFKA_VERSION}" /opt/kafka
ENV KAFKA_HOME=/opt/kafka

COPY requirements.txt /opt/p7/requirements.txt
RUN pip install --no-cache-dir -r /opt/p7/requirements.txt

COPY broker/launcher.py broker/server.properties broker/log4j2.properties /opt/p7/broker/

# Inside the container the broker listens on every interface, so that `-p 9092:9092` reaches it
# from the host; it still advertises localhost:9092, which is right both inside and on the host.
ENV P7_LISTEN_HOST=0.0.0.0 \
    P7_BROKER_STATE=/var/lib/p7-kafka
EXPOSE 9092
CMD ["python3", "/opt/p7/broker/launcher.py", "start", "--foreground"]
