#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# Strict check of Kubernetes manifests against the API types of python3-kubernetes (the
# OpenAPI models of the Kubernetes API it was generated from): every document's
# apiVersion/kind must name a model, every field of every object must be one of its model's
# fields (a misspelled or misplaced field fails), every value must have the field's type
# (string, integer, boolean, list, map, nested object; int-or-string where the API says
# "object"), and each model is built with client-side validation on, so required fields and
# enum values are checked by the library's own rules. Prints one TAP line per document.
#
#   k8s-schema.py FILE...      exit 0 when every document conforms
import re
import sys

import kubernetes.client as kc
import yaml

PRIMITIVE = {"str": str, "int": int, "bool": bool, "float": (int, float)}

# Enumerations the API server enforces but these models leave as plain strings.
ENUMS = {
    ("V1DaemonSetUpdateStrategy", "type"): {"RollingUpdate", "OnDelete"},
    ("V1DeploymentStrategy", "type"): {"RollingUpdate", "Recreate"},
    ("V1ContainerPort", "protocol"): {"TCP", "UDP", "SCTP"},
    ("V1ServicePort", "protocol"): {"TCP", "UDP", "SCTP"},
    ("V1ServiceSpec", "type"): {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"},
    ("V1HostPathVolumeSource", "type"): {"", "DirectoryOrCreate", "Directory", "FileOrCreate",
                                         "File", "Socket", "CharDevice", "BlockDevice"},
    ("V1PodSpec", "dnsPolicy"): {"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"},
    ("V1PodSpec", "restartPolicy"): {"Always", "OnFailure", "Never"},
    ("V1Container", "imagePullPolicy"): {"Always", "IfNotPresent", "Never"},
    ("V1SeccompProfile", "type"): {"RuntimeDefault", "Unconfined", "Localhost"},
    ("V1EmptyDirVolumeSource", "medium"): {"", "Memory"},
    ("V1Toleration", "operator"): {"Exists", "Equal"},
    ("V1EnvVarSource", "fieldRef"): None,
}


class SchemaError(Exception):
    pass


def model_class(api_version, kind):
    group, _, version = api_version.rpartition("/")
    prefix = version.capitalize()
    name = prefix + kind
    cls = getattr(kc, name, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        raise SchemaError("no API type %s for apiVersion %s (group %s)" % (kind, api_version, group or "core"))
    return cls


def check(value, typ, path, cfg):
    """Returns the value as the model expects it; raises SchemaError on any mismatch."""
    if value is None:
        return None
    m = re.match(r"list\[(.*)\]$", typ)
    if m:
        if not isinstance(value, list):
            raise SchemaError("%s: want a list, got %s" % (path, type(value).__name__))
        return [check(v, m.group(1), "%s[%d]" % (path, i), cfg) for i, v in enumerate(value)]
    m = re.match(r"dict\(str, (.*)\)$", typ)
    if m:
        if not isinstance(value, dict):
            raise SchemaError("%s: want a map, got %s" % (path, type(value).__name__))
        return {k: check(v, m.group(1), "%s.%s" % (path, k), cfg) for k, v in value.items()}
    if typ == "object":  # IntOrString, Quantity-like and free-form values
        if isinstance(value, (dict, list)) and not path.endswith(("labels", "annotations")):
            return value
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise SchemaError("%s: want an integer or a string, got %r" % (path, value))
        return value
    if typ == "datetime":
        return value
    if typ in PRIMITIVE:
        want = PRIMITIVE[typ]
        if isinstance(value, bool) and typ != "bool":
            raise SchemaError("%s: want %s, got a boolean" % (path, typ))
        if not isinstance(value, want):
            raise SchemaError("%s: want %s, got %s %r" % (path, typ, type(value).__name__, value))
        return value
    cls = getattr(kc, typ, None)
    if cls is None:
        raise SchemaError("%s: unknown type %s" % (path, typ))
    return build(cls, value, path, cfg)


def build(cls, obj, path, cfg):
    if not isinstance(obj, dict):
        raise SchemaError("%s: want an object (%s), got %s" % (path, cls.__name__, type(obj).__name__))
    by_json = {v: k for k, v in cls.attribute_map.items()}
    kwargs = {}
    for key, value in obj.items():
        attr = by_json.get(key)
        if attr is None:
            raise SchemaError("%s: unknown field %r in %s" % (path, key, cls.__name__))
        kwargs[attr] = check(value, cls.openapi_types[attr], "%s.%s" % (path, key), cfg)
        allowed = ENUMS.get((cls.__name__, attr))
        if allowed and value not in allowed:
            raise SchemaError("%s.%s: %r is not one of %s" % (path, key, value, sorted(allowed)))
    try:
        return cls(local_vars_configuration=cfg, **kwargs)
    except (ValueError, TypeError) as e:
        raise SchemaError("%s (%s): %s" % (path, cls.__name__, e))


def main():
    cfg = kc.Configuration()
    cfg.client_side_validation = True
    n = failed = 0
    for f in sys.argv[1:]:
        with open(f) as fh:
            docs = list(yaml.safe_load_all(fh))
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            n += 1
            name = "%s[%d]" % (f, i)
            try:
                if not isinstance(doc, dict):
                    raise SchemaError("document is not a mapping")
                cls = model_class(doc.get("apiVersion", ""), doc.get("kind", ""))
                meta = doc.get("metadata") or {}
                name = "%s %s/%s" % (f, doc["kind"], meta.get("name", "?"))
                build(cls, doc, doc["kind"], cfg)
                print("ok %d - %s conforms to %s" % (n, name, cls.__name__))
            except (SchemaError, KeyError) as e:
                failed += 1
                print("not ok %d - %s: %s" % (n, name, e))
    if n == 0:
        print("not ok 1 - no documents")
        return 1
    return 1 if failed else 0


sys.exit(main())
