/*
 * hadisc.h - Home Assistant MQTT discovery (docs/MQTT.md "Home Assistant"):
 * with mqtt.ha_discovery on, one retained config message per meter point
 * under <ha_prefix>/sensor/, each meter one HA device, the sensors reading
 * the meter's live topic with device_class, state_class and unit set so
 * HA's energy dashboard takes the billing counters. Published by the
 * daemon's main thread after every broker connect, a batch per call so a
 * large park does not flood Paho's in-flight window.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct config;
struct mqtt;
struct hadisc;

/* For cfg (NULL when discovery is off). cfg must outlive it. */
struct hadisc *hadisc_new(const struct config *cfg);
void hadisc_free(struct hadisc *h);

/* Publishes the next batch when the broker connected since the last full
 * round (all again after each connect). Cheap when there is nothing to do. */
void hadisc_tick(struct hadisc *h, struct mqtt *m);

/* The discovery config of point p of meter m (malloc'd JSON) and its topic
 * (*ret_topic, malloc'd); for tests. */
char *hadisc_config(const struct config *cfg, size_t ent, size_t meter, size_t point,
                    char **ret_topic);
