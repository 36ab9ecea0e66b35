// Built from web/src by `npm run build` (esbuild); do not edit.

// src/sdk/callbridge-bar.ts
import {
  AgentDesk,
  CallbridgeError,
  CommandError,
  LinkError,
  connect,
  httpBase,
  isActive,
  login,
  logout,
  refresh
} from "./callbridge.js";

// node_modules/morphdom/dist/morphdom-esm.js
var DOCUMENT_FRAGMENT_NODE = 11;
function morphAttrs(fromNode, toNode) {
  var toNodeAttrs = toNode.attributes;
  var attr;
  var attrName;
  var attrNamespaceURI;
  var attrValue;
  var fromValue;
  if (toNode.nodeType === DOCUMENT_FRAGMENT_NODE || fromNode.nodeType === DOCUMENT_FRAGMENT_NODE) {
    return;
  }
  for (var i = toNodeAttrs.length - 1; i >= 0; i--) {
    attr = toNodeAttrs[i];
    attrName = attr.name;
    attrNamespaceURI = attr.namespaceURI;
    attrValue = attr.value;
    if (attrNamespaceURI) {
      attrName = attr.localName || attrName;
      fromValue = fromNode.getAttributeNS(attrNamespaceURI, attrName);
      if (fromValue !== attrValue) {
        if (attr.prefix === "xmlns") {
          attrName = attr.name;
        }
        fromNode.setAttributeNS(attrNamespaceURI, attrName, attrValue);
      }
    } else {
      fromValue = fromNode.getAttribute(attrName);
      if (fromValue !== attrValue) {
        fromNode.setAttribute(attrName, attrValue);
      }
    }
  }
  var fromNodeAttrs = fromNode.attributes;
  for (var d = fromNodeAttrs.length - 1; d >= 0; d--) {
    attr = fromNodeAttrs[d];
    attrName = attr.name;
    attrNamespaceURI = attr.namespaceURI;
    if (attrNamespaceURI) {
      attrName = attr.localName || attrName;
      if (!toNode.hasAttributeNS(attrNamespaceURI, attrName)) {
        fromNode.removeAttributeNS(attrNamespaceURI, attrName);
      }
    } else {
      if (!toNode.hasAttribute(attrName)) {
        fromNode.removeAttribute(attrName);
      }
    }
  }
}
var range;
var NS_XHTML = "http://www.w3.org/1999/xhtml";
var doc = typeof document === "undefined" ? void 0 : document;
var HAS_TEMPLATE_SUPPORT = !!doc && "content" in doc.createElement("template");
var HAS_RANGE_SUPPORT = !!doc && doc.createRange && "createContextualFragment" in doc.createRange();
function createFragmentFromTemplate(str) {
  var template = doc.createElement("template");
  template.innerHTML = str;
  return template.content.childNodes[0];
}
function createFragmentFromRange(str) {
  if (!range) {
    range = doc.createRange();
    range.selectNode(doc.body);
  }
  var fragment = range.createContextualFragment(str);
  return fragment.childNodes[0];
}
function createFragmentFromWrap(str) {
  var fragment = doc.createElement("body");
  fragment.innerHTML = str;
  return fragment.childNodes[0];
}
function toElement(str) {
  str = str.trim();
  if (HAS_TEMPLATE_SUPPORT) {
    return createFragmentFromTemplate(str);
  } else if (HAS_RANGE_SUPPORT) {
    return createFragmentFromRange(str);
  }
  return createFragmentFromWrap(str);
}
function compareNodeNames(fromEl, toEl) {
  var fromNodeName = fromEl.nodeName;
  var toNodeName = toEl.nodeName;
  var fromCodeStart, toCodeStart;
  if (fromNodeName === toNodeName) {
    return true;
  }
  fromCodeStart = fromNodeName.charCodeAt(0);
  toCodeStart = toNodeName.charCodeAt(0);
  if (fromCodeStart <= 90 && toCodeStart >= 97) {
    return fromNodeName === toNodeName.toUpperCase();
  } else if (toCodeStart <= 90 && fromCodeStart >= 97) {
    return toNodeName === fromNodeName.toUpperCase();
  } else {
    return false;
  }
}
function createElementNS(name, namespaceURI) {
  return !namespaceURI || namespaceURI === NS_XHTML ? doc.createElement(name) : doc.createElementNS(namespaceURI, name);
}
function moveChildren(fromEl, toEl) {
  var curChild = fromEl.firstChild;
  while (curChild) {
    var nextChild = curChild.nextSibling;
    toEl.appendChild(curChild);
    curChild = nextChild;
  }
  return toEl;
}
function syncBooleanAttrProp(fromEl, toEl, name) {
  if (fromEl[name] !== toEl[name]) {
    fromEl[name] = toEl[name];
    if (fromEl[name]) {
      fromEl.setAttribute(name, "");
    } else {
      fromEl.removeAttribute(name);
    }
  }
}
var specialElHandlers = {
  OPTION: function(fromEl, toEl) {
    var parentNode = fromEl.parentNode;
    if (parentNode) {
      var parentName = parentNode.nodeName.toUpperCase();
      if (parentName === "OPTGROUP") {
        parentNode = parentNode.parentNode;
        parentName = parentNode && parentNode.nodeName.toUpperCase();
      }
      if (parentName === "SELECT" && !parentNode.hasAttribute("multiple")) {
        if (fromEl.hasAttribute("selected") && !toEl.selected) {
          fromEl.setAttribute("selected", "selected");
          fromEl.removeAttribute("selected");
        }
        parentNode.selectedIndex = -1;
      }
    }
    syncBooleanAttrProp(fromEl, toEl, "selected");
  },
  /**
   * The "value" attribute is special for the <input> element since it sets
   * the initial value. Changing the "value" attribute without changing the
   * "value" property will have no effect since it is only used to the set the
   * initial value.  Similar for the "checked" attribute, and "disabled".
   */
  INPUT: function(fromEl, toEl) {
    syncBooleanAttrProp(fromEl, toEl, "checked");
    syncBooleanAttrProp(fromEl, toEl, "disabled");
    if (fromEl.value !== toEl.value) {
      fromEl.value = toEl.value;
    }
    if (!toEl.hasAttribute("value")) {
      fromEl.removeAttribute("value");
    }
  },
  TEXTAREA: function(fromEl, toEl) {
    var newValue = toEl.value;
    if (fromEl.value !== newValue) {
      fromEl.value = newValue;
    }
    var firstChild = fromEl.firstChild;
    if (firstChild) {
      var oldValue = firstChild.nodeValue;
      if (oldValue == newValue || !newValue && oldValue == fromEl.placeholder) {
        return;
      }
      firstChild.nodeValue = newValue;
    }
  },
  SELECT: function(fromEl, toEl) {
    if (!toEl.hasAttribute("multiple")) {
      var selectedIndex = -1;
      var i = 0;
      var curChild = fromEl.firstChild;
      var optgroup;
      var nodeName;
      while (curChild) {
        nodeName = curChild.nodeName && curChild.nodeName.toUpperCase();
        if (nodeName === "OPTGROUP") {
          optgroup = curChild;
          curChild = optgroup.firstChild;
          if (!curChild) {
            curChild = optgroup.nextSibling;
            optgroup = null;
          }
        } else {
          if (nodeName === "OPTION") {
            if (curChild.hasAttribute("selected")) {
              selectedIndex = i;
              break;
            }
            i++;
          }
          curChild = curChild.nextSibling;
          if (!curChild && optgroup) {
            curChild = optgroup.nextSibling;
            optgroup = null;
          }
        }
      }
      fromEl.selectedIndex = selectedIndex;
    }
  }
};
var ELEMENT_NODE = 1;
var DOCUMENT_FRAGMENT_NODE$1 = 11;
var TEXT_NODE = 3;
var COMMENT_NODE = 8;
function noop() {
}
function defaultGetNodeKey(node) {
  if (node) {
    return node.getAttribute && node.getAttribute("id") || node.id;
  }
}
function morphdomFactory(morphAttrs2) {
  return function morphdom2(fromNode, toNode, options) {
    if (!options) {
      options = {};
    }
    if (typeof toNode === "string") {
      if (fromNode.nodeName === "#document" || fromNode.nodeName === "HTML") {
        var toNodeHtml = toNode;
        toNode = doc.createElement("html");
        toNode.innerHTML = toNodeHtml;
      } else if (fromNode.nodeName === "BODY") {
        var toNodeBody = toNode;
        toNode = doc.createElement("html");
        toNode.innerHTML = toNodeBody;
        var bodyElement = toNode.querySelector("body");
        if (bodyElement) {
          toNode = bodyElement;
        }
      } else {
        toNode = toElement(toNode);
      }
    } else if (toNode.nodeType === DOCUMENT_FRAGMENT_NODE$1) {
      toNode = toNode.firstElementChild;
    }
    var getNodeKey = options.getNodeKey || defaultGetNodeKey;
    var onBeforeNodeAdded = options.onBeforeNodeAdded || noop;
    var onNodeAdded = options.onNodeAdded || noop;
    var onBeforeElUpdated = options.onBeforeElUpdated || noop;
    var onElUpdated = options.onElUpdated || noop;
    var onBeforeNodeDiscarded = options.onBeforeNodeDiscarded || noop;
    var onNodeDiscarded = options.onNodeDiscarded || noop;
    var onBeforeElChildrenUpdated = options.onBeforeElChildrenUpdated || noop;
    var skipFromChildren = options.skipFromChildren || noop;
    var addChild = options.addChild || function(parent, child) {
      return parent.appendChild(child);
    };
    var childrenOnly = options.childrenOnly === true;
    var fromNodesLookup = /* @__PURE__ */ Object.create(null);
    var keyedRemovalList = [];
    function addKeyedRemoval(key) {
      keyedRemovalList.push(key);
    }
    function walkDiscardedChildNodes(node, skipKeyedNodes) {
      if (node.nodeType === ELEMENT_NODE) {
        var curChild = node.firstChild;
        while (curChild) {
          var key = void 0;
          if (skipKeyedNodes && (key = getNodeKey(curChild))) {
            addKeyedRemoval(key);
          } else {
            onNodeDiscarded(curChild);
            if (curChild.firstChild) {
              walkDiscardedChildNodes(curChild, skipKeyedNodes);
            }
          }
          curChild = curChild.nextSibling;
        }
      }
    }
    function removeNode(node, parentNode, skipKeyedNodes) {
      if (onBeforeNodeDiscarded(node) === false) {
        return;
      }
      if (parentNode) {
        parentNode.removeChild(node);
      }
      onNodeDiscarded(node);
      walkDiscardedChildNodes(node, skipKeyedNodes);
    }
    function indexTree(node) {
      if (node.nodeType === ELEMENT_NODE || node.nodeType === DOCUMENT_FRAGMENT_NODE$1) {
        var curChild = node.firstChild;
        while (curChild) {
          var key = getNodeKey(curChild);
          if (key) {
            fromNodesLookup[key] = curChild;
          }
          indexTree(curChild);
          curChild = curChild.nextSibling;
        }
      }
    }
    indexTree(fromNode);
    function handleNodeAdded(el) {
      onNodeAdded(el);
      var curChild = el.firstChild;
      while (curChild) {
        var nextSibling = curChild.nextSibling;
        var key = getNodeKey(curChild);
        if (key) {
          var unmatchedFromEl = fromNodesLookup[key];
          if (unmatchedFromEl && compareNodeNames(curChild, unmatchedFromEl)) {
            curChild.parentNode.replaceChild(unmatchedFromEl, curChild);
            morphEl(unmatchedFromEl, curChild);
          } else {
            handleNodeAdded(curChild);
          }
        } else {
          handleNodeAdded(curChild);
        }
        curChild = nextSibling;
      }
    }
    function cleanupFromEl(fromEl, curFromNodeChild, curFromNodeKey) {
      while (curFromNodeChild) {
        var fromNextSibling = curFromNodeChild.nextSibling;
        if (curFromNodeKey = getNodeKey(curFromNodeChild)) {
          addKeyedRemoval(curFromNodeKey);
        } else {
          removeNode(
            curFromNodeChild,
            fromEl,
            true
            /* skip keyed nodes */
          );
        }
        curFromNodeChild = fromNextSibling;
      }
    }
    function morphEl(fromEl, toEl, childrenOnly2) {
      var toElKey = getNodeKey(toEl);
      if (toElKey) {
        delete fromNodesLookup[toElKey];
      }
      if (!childrenOnly2) {
        var beforeUpdateResult = onBeforeElUpdated(fromEl, toEl);
        if (beforeUpdateResult === false) {
          return;
        } else if (beforeUpdateResult instanceof HTMLElement) {
          fromEl = beforeUpdateResult;
          indexTree(fromEl);
        }
        morphAttrs2(fromEl, toEl);
        onElUpdated(fromEl);
        if (onBeforeElChildrenUpdated(fromEl, toEl) === false) {
          return;
        }
      }
      if (fromEl.nodeName !== "TEXTAREA") {
        morphChildren(fromEl, toEl);
      } else {
        specialElHandlers.TEXTAREA(fromEl, toEl);
      }
    }
    function morphChildren(fromEl, toEl) {
      var skipFrom = skipFromChildren(fromEl, toEl);
      var curToNodeChild = toEl.firstChild;
      var curFromNodeChild = fromEl.firstChild;
      var curToNodeKey;
      var curFromNodeKey;
      var fromNextSibling;
      var toNextSibling;
      var matchingFromEl;
      outer: while (curToNodeChild) {
        toNextSibling = curToNodeChild.nextSibling;
        curToNodeKey = getNodeKey(curToNodeChild);
        while (!skipFrom && curFromNodeChild) {
          fromNextSibling = curFromNodeChild.nextSibling;
          if (curToNodeChild.isSameNode && curToNodeChild.isSameNode(curFromNodeChild)) {
            curToNodeChild = toNextSibling;
            curFromNodeChild = fromNextSibling;
            continue outer;
          }
          curFromNodeKey = getNodeKey(curFromNodeChild);
          var curFromNodeType = curFromNodeChild.nodeType;
          var isCompatible = void 0;
          if (curFromNodeType === curToNodeChild.nodeType) {
            if (curFromNodeType === ELEMENT_NODE) {
              if (curToNodeKey) {
                if (curToNodeKey !== curFromNodeKey) {
                  if (matchingFromEl = fromNodesLookup[curToNodeKey]) {
                    if (fromNextSibling === matchingFromEl) {
                      isCompatible = false;
                    } else {
                      fromEl.insertBefore(matchingFromEl, curFromNodeChild);
                      if (curFromNodeKey) {
                        addKeyedRemoval(curFromNodeKey);
                      } else {
                        removeNode(
                          curFromNodeChild,
                          fromEl,
                          true
                          /* skip keyed nodes */
                        );
                      }
                      curFromNodeChild = matchingFromEl;
                      curFromNodeKey = getNodeKey(curFromNodeChild);
                    }
                  } else {
                    isCompatible = false;
                  }
                }
              } else if (curFromNodeKey) {
                isCompatible = false;
              }
              isCompatible = isCompatible !== false && compareNodeNames(curFromNodeChild, curToNodeChild);
              if (isCompatible) {
                morphEl(curFromNodeChild, curToNodeChild);
              }
            } else if (curFromNodeType === TEXT_NODE || curFromNodeType == COMMENT_NODE) {
              isCompatible = true;
              if (curFromNodeChild.nodeValue !== curToNodeChild.nodeValue) {
                curFromNodeChild.nodeValue = curToNodeChild.nodeValue;
              }
            }
          }
          if (isCompatible) {
            curToNodeChild = toNextSibling;
            curFromNodeChild = fromNextSibling;
            continue outer;
          }
          if (curFromNodeKey) {
            addKeyedRemoval(curFromNodeKey);
          } else {
            removeNode(
              curFromNodeChild,
              fromEl,
              true
              /* skip keyed nodes */
            );
          }
          curFromNodeChild = fromNextSibling;
        }
        if (curToNodeKey && (matchingFromEl = fromNodesLookup[curToNodeKey]) && compareNodeNames(matchingFromEl, curToNodeChild)) {
          if (!skipFrom) {
            addChild(fromEl, matchingFromEl);
          }
          morphEl(matchingFromEl, curToNodeChild);
        } else {
          var onBeforeNodeAddedResult = onBeforeNodeAdded(curToNodeChild);
          if (onBeforeNodeAddedResult !== false) {
            if (onBeforeNodeAddedResult) {
              curToNodeChild = onBeforeNodeAddedResult;
            }
            if (curToNodeChild.actualize) {
              curToNodeChild = curToNodeChild.actualize(fromEl.ownerDocument || doc);
            }
            addChild(fromEl, curToNodeChild);
            handleNodeAdded(curToNodeChild);
          }
        }
        curToNodeChild = toNextSibling;
        curFromNodeChild = fromNextSibling;
      }
      cleanupFromEl(fromEl, curFromNodeChild, curFromNodeKey);
      var specialElHandler = specialElHandlers[fromEl.nodeName];
      if (specialElHandler) {
        specialElHandler(fromEl, toEl);
      }
    }
    var morphedNode = fromNode;
    var morphedNodeType = morphedNode.nodeType;
    var toNodeType = toNode.nodeType;
    if (!childrenOnly) {
      if (morphedNodeType === ELEMENT_NODE) {
        if (toNodeType === ELEMENT_NODE) {
          if (!compareNodeNames(fromNode, toNode)) {
            onNodeDiscarded(fromNode);
            morphedNode = moveChildren(fromNode, createElementNS(toNode.nodeName, toNode.namespaceURI));
          }
        } else {
          morphedNode = toNode;
        }
      } else if (morphedNodeType === TEXT_NODE || morphedNodeType === COMMENT_NODE) {
        if (toNodeType === morphedNodeType) {
          if (morphedNode.nodeValue !== toNode.nodeValue) {
            morphedNode.nodeValue = toNode.nodeValue;
          }
          return morphedNode;
        } else {
          morphedNode = toNode;
        }
      }
    }
    if (morphedNode === toNode) {
      onNodeDiscarded(fromNode);
    } else {
      if (toNode.isSameNode && toNode.isSameNode(morphedNode)) {
        return;
      }
      morphEl(morphedNode, toNode, childrenOnly);
      if (keyedRemovalList) {
        for (var i = 0, len = keyedRemovalList.length; i < len; i++) {
          var elToRemove = fromNodesLookup[keyedRemovalList[i]];
          if (elToRemove) {
            removeNode(elToRemove, elToRemove.parentNode, false);
          }
        }
      }
    }
    if (!childrenOnly && morphedNode !== fromNode && fromNode.parentNode) {
      if (morphedNode.actualize) {
        morphedNode = morphedNode.actualize(fromNode.ownerDocument || doc);
      }
      fromNode.parentNode.replaceChild(morphedNode, fromNode);
    }
    return morphedNode;
  };
}
var morphdom = morphdomFactory(morphAttrs);
var morphdom_esm_default = morphdom;

// src/sdk/callbridge-bar.css
var callbridge_bar_default = '/* Styles of <callbridge-bar> (its shadow root). Hosts theme it with the custom properties\n   below (set them on the element) and with ::part(). */\n:host {\n  --cb-font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;\n  --cb-font-size: 14px;\n  --cb-bg: #ffffff;\n  --cb-fg: #1d2430;\n  --cb-muted: #667085;\n  --cb-border: #d8dde6;\n  --cb-surface: #f5f7fa;\n  --cb-accent: #1f6feb;\n  --cb-accent-fg: #ffffff;\n  --cb-danger: #c62828;\n  --cb-ok: #1b7f3b;\n  --cb-warn: #b26a00;\n  --cb-ringing: #1f6feb;\n  --cb-radius: 8px;\n  --cb-gap: 8px;\n  display: block;\n  font: var(--cb-font-size)/1.45 var(--cb-font);\n  color: var(--cb-fg);\n}\n* { box-sizing: border-box; }\n[hidden] { display: none !important; }\n.bar { background: var(--cb-bg); border: 1px solid var(--cb-border); border-radius: var(--cb-radius); padding: 10px 12px; }\n.row { display: flex; flex-wrap: wrap; align-items: center; gap: var(--cb-gap); }\n.row + .row { margin-top: var(--cb-gap); }\n.grow { flex: 1 1 auto; }\n.brand { font-weight: 700; letter-spacing: .2px; }\n.muted { color: var(--cb-muted); }\n.small { font-size: .86em; }\ninput, select, textarea, button { font: inherit; color: inherit; }\ninput, select, textarea { padding: 5px 8px; border: 1px solid var(--cb-border); border-radius: calc(var(--cb-radius) - 2px); background: var(--cb-bg); min-width: 0; }\ntextarea { width: 100%; min-height: 3.2em; resize: vertical; }\nbutton { padding: 5px 12px; border: 1px solid var(--cb-border); border-radius: calc(var(--cb-radius) - 2px); background: var(--cb-bg); cursor: pointer; white-space: nowrap; }\nbutton:hover:not(:disabled) { border-color: var(--cb-accent); }\nbutton:disabled { opacity: .45; cursor: default; }\nbutton.primary { background: var(--cb-accent); border-color: var(--cb-accent); color: var(--cb-accent-fg); }\nbutton.danger { background: var(--cb-danger); border-color: var(--cb-danger); color: #fff; }\nbutton.ok { background: var(--cb-ok); border-color: var(--cb-ok); color: #fff; }\n.dot { width: 9px; height: 9px; border-radius: 50%; background: var(--cb-muted); display: inline-block; flex: none; }\n.dot.open { background: var(--cb-ok); }\n.dot.reconnecting, .dot.connecting { background: var(--cb-warn); }\n.dot.closed { background: var(--cb-danger); }\n.pill { display: inline-block; padding: 1px 10px; border-radius: 999px; font-weight: 600; background: var(--cb-surface); border: 1px solid var(--cb-border); }\n.pill.ready { background: #dff5e3; border-color: #bfe6c8; color: var(--cb-ok); }\n.pill.not_ready, .pill.logged_out { background: #fde2e2; border-color: #f6c4c4; color: var(--cb-danger); }\n.pill.busy { background: #e4edff; border-color: #c6d7fb; color: var(--cb-accent); }\n.pill.working_after_call { background: #fff4d6; border-color: #f3dea2; color: var(--cb-warn); }\n.error { color: var(--cb-danger); margin: 6px 0 0; min-height: 0; }\n.error:empty { display: none; }\n.login { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: var(--cb-gap); align-items: end; }\n.login label { display: grid; gap: 2px; color: var(--cb-muted); font-size: .9em; }\n.cards { display: grid; gap: var(--cb-gap); margin-top: var(--cb-gap); }\n.card { border: 1px solid var(--cb-border); border-radius: var(--cb-radius); padding: 10px 12px; background: var(--cb-bg); }\n.card.alerting { border-color: var(--cb-ringing); box-shadow: 0 0 0 2px color-mix(in srgb, var(--cb-ringing) 25%, transparent); }\n.card.held { border-style: dashed; }\n.card.wrapup { background: var(--cb-surface); }\n.card h3 { margin: 0; font-size: 1em; display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 10px; }\n.who { font-size: 1.15em; font-weight: 700; }\n.badge { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: .85em; font-weight: 600; background: var(--cb-surface); border: 1px solid var(--cb-border); }\n.badge.alerting { background: var(--cb-ringing); border-color: var(--cb-ringing); color: #fff; }\n.badge.connected { background: #dff5e3; border-color: #bfe6c8; color: var(--cb-ok); }\n.badge.held { background: #fff4d6; border-color: #f3dea2; color: var(--cb-warn); }\n.facts { display: flex; flex-wrap: wrap; gap: 2px 16px; margin: 6px 0; }\n.facts span b { font-weight: 600; }\ndl.data { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; padding: 6px 8px; background: var(--cb-surface); border-radius: calc(var(--cb-radius) - 2px); }\ndl.data dt { color: var(--cb-muted); }\ndl.data dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }\n.note { margin: 6px 0; padding: 6px 8px; border-left: 3px solid var(--cb-warn); background: #fff8e6; overflow-wrap: anywhere; white-space: pre-wrap; }\na { color: var(--cb-accent); }\n.transfer input.to { width: 11em; }\ninput.dial { width: 18em; }\n.transfer input.tnote { flex: 1 1 12em; }\n';

// src/sdk/callbridge-bar.ts
var TRANSFER_NOTE_KEY = "transfer_note";
var DEFAULT_DISPOSITIONS = ["resolved", "follow_up", "sale", "no_sale", "wrong_number"];
var SCRIPT_ORIGIN = (() => {
  try {
    return new URL(import.meta.url).origin;
  } catch {
    return "";
  }
})();
function domEventName(type) {
  if (type.startsWith("call.")) return "callbridge:" + type.slice(5);
  return "callbridge:" + type.replace(".", "_");
}
function fillTemplate(tpl, call) {
  return tpl.replace(/\{([A-Za-z0-9_.-]+)\}/g, (_, name) => {
    const key = name.startsWith("attached_data.") ? name.slice(14) : name;
    let v = call[key];
    if (typeof v !== "string") v = call.attached_data?.[key];
    return encodeURIComponent(typeof v === "string" ? v : "");
  });
}
var STATE_LABEL = {
  logged_out: "Logged out",
  not_ready: "Not ready",
  ready: "Ready",
  busy: "On a call",
  working_after_call: "Wrap-up"
};
var CONN_LABEL = {
  initiated: "Dialing",
  alerting: "Ringing",
  connected: "Talking",
  held: "On hold"
};
var COMMAND_LABEL = {
  make_call: "Make call",
  answer_call: "Answer",
  clear_connection: "Hang up",
  hold_call: "Hold",
  retrieve_call: "Retrieve",
  single_step_transfer: "Blind transfer",
  consultation_call: "Consult",
  transfer_call: "Complete transfer",
  conference_call: "Conference",
  update_call_data: "Update call data",
  set_agent_state: "Agent state",
  set_disposition: "Save disposition"
};
function humanize(s) {
  const t = s.replace(/[_-]+/g, " ").trim().toLowerCase();
  return t.replace(/^ivr /, "IVR ").replace(/^./, (c) => c.toUpperCase());
}
function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}
function since(iso, now = Date.now()) {
  if (!iso) return "";
  const s = Math.max(0, Math.floor((now - new Date(iso).getTime()) / 1e3));
  const h2 = Math.floor(s / 3600);
  const m = Math.floor(s % 3600 / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h2 > 0 ? `${h2}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}
function nodeKey(n) {
  if (n.nodeType !== Node.ELEMENT_NODE) return void 0;
  const d = n.dataset;
  if (d.key) return "key:" + d.key;
  if (d.action) return "action:" + d.action + ":" + (d.call ?? "");
  if (d.wrapup) return "wrapup:" + d.wrapup;
  if (d.call && n.classList.contains("card")) return "call:" + d.call;
  return void 0;
}
function h(tag, props = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === void 0 || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k === "class") el.className = String(v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const kid of kids) if (kid !== null && kid !== void 0 && kid !== false) el.append(kid);
  return el;
}
async function firstTab(key) {
  const claim = () => {
    try {
      if (localStorage.getItem(key)) return false;
      localStorage.setItem(key, String(Date.now()));
      const day = Date.now() - 864e5;
      for (let i = localStorage.length - 1; i >= 0; i--) {
        const k = localStorage.key(i);
        if (k && k.startsWith("callbridge.popped@") && Number(localStorage.getItem(k)) < day) localStorage.removeItem(k);
      }
    } catch {
    }
    return true;
  };
  const locks = navigator.locks;
  if (!locks) return claim();
  return locks.request("callbridge-claims", () => claim());
}
var sheet = null;
function styles() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(callbridge_bar_default);
  }
  return sheet;
}
function sameLogin(a, b) {
  return a.tenant === b.tenant && a.username === b.username;
}
var CallbridgeBar = class extends HTMLElement {
  static observedAttributes = ["server", "screen-pop", "dispositions"];
  /** A callback for the screen pop; used instead of the `screen-pop` URL template when set. */
  screenPop = null;
  #root;
  #session = null;
  #client = null;
  #desk = null;
  #link = null;
  #error = "";
  #info = "";
  #drafts = /* @__PURE__ */ new Map();
  #talked = /* @__PURE__ */ new Set();
  #popped = /* @__PURE__ */ new Set();
  #wrapups = /* @__PURE__ */ new Map();
  #consults = /* @__PURE__ */ new Map();
  // consultation call → consulted call, started here
  #busy = /* @__PURE__ */ new Set();
  // "cmd:call" being sent
  #tick;
  #onStorage = (e) => this.#storageChanged(e);
  #started = false;
  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#root.adoptedStyleSheets = [styles()];
    this.#root.addEventListener("click", (e) => this.#click(e));
    this.#root.addEventListener("input", (e) => this.#input(e));
    this.#root.addEventListener("change", (e) => this.#input(e));
    this.#root.addEventListener("submit", (e) => this.#submit(e));
  }
  connectedCallback() {
    if (this.#started) return;
    this.#started = true;
    window.addEventListener("storage", this.#onStorage);
    this.#tick = setInterval(() => this.#updateTimers(), 1e3);
    const saved = this.#loadSession();
    if (saved) this.#start(saved, false);
    else this.#render();
  }
  disconnectedCallback() {
    this.#started = false;
    window.removeEventListener("storage", this.#onStorage);
    clearInterval(this.#tick);
    this.#stop();
  }
  attributeChangedCallback(name, old, val) {
    if (old === val || !this.#started) return;
    if (name === "server") {
      this.#stop();
      const saved = this.#loadSession();
      if (saved) this.#start(saved, false);
    }
    this.#render();
  }
  // ---- public API ----
  /** The callbridge server's URL. */
  get server() {
    return httpBase(this.getAttribute("server") || SCRIPT_ORIGIN || void 0);
  }
  set server(v) {
    this.setAttribute("server", v);
  }
  /** The SDK client of the signed-in session, or null. */
  get client() {
    return this.#client;
  }
  /** The agent's desk model (agent, reason codes, active calls), or null. */
  get desk() {
    return this.#desk;
  }
  /** The signed-in session, or null. */
  get session() {
    return this.#session;
  }
  /** Calls whose wrap-up is still to be saved. */
  get wrapUps() {
    return [...this.#wrapups.values()];
  }
  /** login signs in with a user name and password and connects. */
  async login(username, password, tenant) {
    const s = await login({ url: this.server, username, password, tenant });
    this.#saveSession(s);
    this.#start(s, true);
    return s;
  }
  /** useSession connects with a session (token) obtained elsewhere, e.g. by the CRM's server. */
  useSession(s) {
    this.#saveSession(s);
    this.#start(s, true);
  }
  /** logout ends the web session: on the server (POST /v1/logout, so its tokens stop working and
   * its sockets close) and in every tab of this page's origin. The agent's state on the switch
   * does not change (use setAgentState("logged_out") to log off the queues). */
  logout() {
    const s = this.#session;
    if (s) {
      logout({ url: this.server, token: s.token, refreshToken: s.refresh_token }).catch(() => {
      });
    }
    this.#clearSession();
    this.#stop();
    this.#render();
    this.#fire("callbridge:logout", {});
  }
  /** dial places a call (agent-first: the agent's phone rings first) and resolves with its call_id. */
  async dial(number, attachedData) {
    const to = String(number ?? "").trim();
    if (!to) throw new CallbridgeError("invalid", "dial: a number is required");
    const r = await this.#run("make_call", "", () => this.#need().makeCall(to, attachedData));
    return r.call_id;
  }
  /** answer answers callId, or the call ringing at the agent's device. */
  answer(callId) {
    const id = callId ?? this.#pick("alerting");
    if (!id) return Promise.reject(new CallbridgeError("conflict", "no call is ringing"));
    return this.#run("answer_call", id, () => this.#need().answerCall(id));
  }
  /** hangUp leaves callId, or the agent's current call (talking, on hold, dialing or ringing). */
  hangUp(callId) {
    const id = callId ?? this.#pick("connected", "initiated", "held", "alerting");
    if (!id) return Promise.reject(new CallbridgeError("conflict", "no call to hang up"));
    return this.#run("clear_connection", id, () => this.#need().clearConnection(id));
  }
  /** setAgentState asks for ready, not_ready (with a reason code) or logged_out. */
  setAgentState(state, reason) {
    return this.#run("set_agent_state", "", () => this.#need().setAgentState(state, reason));
  }
  // ---- session ----
  #storageKey() {
    return "callbridge.session@" + this.server;
  }
  #loadSession() {
    try {
      const s = JSON.parse(localStorage.getItem(this.#storageKey()) || "null");
      if (s && s.token) return s;
    } catch {
    }
    return null;
  }
  #saveSession(s) {
    try {
      localStorage.setItem(this.#storageKey(), JSON.stringify(s));
    } catch {
    }
  }
  #clearSession() {
    try {
      localStorage.removeItem(this.#storageKey());
    } catch {
    }
  }
  #storageChanged(e) {
    if (e.key !== this.#storageKey() && e.key !== null) return;
    const s = this.#loadSession();
    if (!s && this.#session) {
      this.#stop();
      this.#info = "Signed out in another tab.";
      this.#render();
      this.#fire("callbridge:logout", {});
    } else if (s && this.#session && this.#client && sameLogin(s, this.#session)) {
      if (s.token !== this.#session.token) {
        this.#session = s;
        this.#client.useSession(s);
      }
    } else if (s && (!this.#session || s.token !== this.#session.token)) {
      this.#start(s, false);
    }
  }
  /**
   * refreshShared refreshes the session for every tab of this origin at once: under a Web Lock
   * (where the browser has them) it first looks whether another tab stored a newer session, and
   * refreshes only if not; the result goes to localStorage, where the other tabs pick it up.
   * A refresh refused because another tab was faster is answered with that tab's session.
   */
  async #refreshShared(cur) {
    const run = async () => {
      const stored = this.#loadSession();
      if (stored && sameLogin(stored, cur) && stored.refresh_token && stored.refresh_token !== cur.refresh_token) return stored;
      try {
        const s = await refresh({ url: this.server, refreshToken: cur.refresh_token ?? "" });
        this.#saveSession(s);
        return s;
      } catch (err) {
        const again = this.#loadSession();
        if (again && sameLogin(again, cur) && again.refresh_token && again.refresh_token !== cur.refresh_token) return again;
        throw err;
      }
    };
    const locks = navigator.locks;
    return locks ? locks.request("callbridge.refresh@" + this.server, run) : run();
  }
  #stateKey() {
    return `callbridge.desk@${this.server}/${this.#session?.tenant}/${this.#session?.username}`;
  }
  #loadState() {
    this.#talked.clear();
    this.#popped.clear();
    this.#wrapups.clear();
    try {
      const p = JSON.parse(sessionStorage.getItem(this.#stateKey()) || "null");
      if (!p) return;
      for (const id of p.talked ?? []) this.#talked.add(id);
      for (const id of p.popped ?? []) this.#popped.add(id);
      for (const w of p.wrapups ?? []) this.#wrapups.set(w.call.call_id, { ...w, saving: false });
    } catch {
    }
  }
  #saveState() {
    if (!this.#session) return;
    const keep = (s) => [...s].slice(-200);
    const p = { talked: keep(this.#talked), popped: keep(this.#popped), wrapups: [...this.#wrapups.values()] };
    try {
      sessionStorage.setItem(this.#stateKey(), JSON.stringify(p));
    } catch {
    }
  }
  #start(s, fresh) {
    this.#stop();
    this.#session = s;
    this.#error = "";
    this.#info = "";
    this.#loadState();
    const client = s.refresh_token ? connect({ url: this.server, session: s, refresh: (cur) => this.#refreshShared(cur) }) : connect({ url: this.server, token: s.token });
    this.#client = client;
    this.#desk = new AgentDesk(client, s.username);
    client.on("session", (ns) => {
      if (this.#client === client) this.#session = ns;
    });
    client.on("status", (st) => {
      this.#link = st;
      if (st.status === "closed" && (st.reason === "unauthorized" || st.reason === "token_expired" || st.reason === "signed_out")) {
        this.#clearSession();
        this.#stop();
        this.#info = st.reason === "signed_out" ? "You were signed out." : "Your session expired. Please sign in again.";
        this.#fire("callbridge:logout", { reason: st.reason });
      }
      this.#fire("callbridge:connection", st);
      this.#render();
    });
    client.on("snapshot", (m) => {
      for (const c of m.data.calls ?? []) {
        const cn = this.#desk?.myConnection(c);
        if (cn?.state === "connected" || cn?.state === "held") this.#talked.add(c.call_id);
      }
      this.#saveState();
      this.#fire("callbridge:snapshot", m.data);
    });
    this.#desk.onChange((ev) => {
      if ("seq" in ev && ev.type !== "snapshot") this.#event(ev);
      this.#render();
    });
    this.#render();
    if (fresh) this.#fire("callbridge:login", { username: s.username, tenant: s.tenant, role: s.role });
  }
  #stop() {
    this.#desk?.dispose();
    this.#client?.close();
    this.#desk = null;
    this.#client = null;
    this.#session = null;
    this.#link = null;
    this.#consults.clear();
    this.#busy.clear();
  }
  #need() {
    if (!this.#client) throw new LinkError("", "not_connected", "not signed in to callbridge");
    return this.#client;
  }
  // ---- events ----
  #fire(name, detail, cancelable = false) {
    return this.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true, cancelable }));
  }
  #isMe(d) {
    const me = this.#session?.username;
    const dev = this.#desk?.agent?.device;
    return !!me && d.agent === me || !!dev && d.device === dev;
  }
  #event(ev) {
    if (ev.type.startsWith("call.")) this.#callEvent(ev);
    this.#fire("callbridge:event", ev);
    this.#fire(domEventName(ev.type), ev);
  }
  #callEvent(ev) {
    const d = ev.data;
    const id = d.call_id;
    const mine = this.#desk?.myConnection(d);
    let changed = false;
    if (mine && (mine.state === "connected" || mine.state === "held") && !this.#talked.has(id)) {
      this.#talked.add(id);
      changed = true;
    }
    const popOn = this.getAttribute("screen-pop-on") === "established" ? "call.established" : "call.delivered";
    if (ev.type === popOn && this.#isMe(d) && !this.#popped.has(id) && !d.consult_of) {
      this.#popped.add(id);
      changed = true;
      this.#pop(d);
    }
    const left = ev.type === "call.cleared" || ev.type === "call.connection_cleared" && this.#isMe(d) || ev.type === "call.transferred" && !!this.#desk?.agent?.device && d.transferring_device === this.#desk.agent.device;
    if (left && this.#talked.has(id) && !d.consult_of && !this.#wrapups.has(id) && !isActive(mine?.state)) {
      const w = { call: { ...d }, ended_at: d.ended_at || ev.time };
      this.#wrapups.set(id, w);
      changed = true;
      this.#fire("callbridge:wrapup", w);
    }
    if (ev.type === "call.disposition_set" && this.#wrapups.delete(id)) {
      changed = true;
      this.#info = `Disposition saved: ${humanize(d.disposition ?? "")}.`;
    }
    if (ev.type === "call.cleared" || !mine && this.#isMe(d)) this.#consults.delete(id);
    if (changed) this.#saveState();
  }
  #pop(call) {
    const tpl = this.getAttribute("screen-pop") || "";
    const url = tpl ? fillTemplate(tpl, call) : "";
    if (!this.#fire("callbridge:screenpop", { call, url }, true)) return;
    if (this.screenPop) {
      try {
        this.screenPop(call);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
      return;
    }
    if (!url) return;
    void firstTab(`callbridge.popped@${this.server}/${call.call_id}`).then((first) => {
      if (!first) return;
      const w = window.open(url, this.getAttribute("screen-pop-target") || "callbridge-pop");
      if (w) {
        try {
          w.opener = null;
        } catch {
        }
      }
    });
  }
  // ---- commands ----
  async #run(cmd, callId, fn) {
    const key = cmd + ":" + callId;
    this.#busy.add(key);
    this.#error = "";
    this.#info = "";
    this.#render();
    try {
      return await fn();
    } catch (err) {
      this.#showError(cmd, err);
      throw err;
    } finally {
      this.#busy.delete(key);
      this.#render();
    }
  }
  #showError(cmd, err) {
    const label = COMMAND_LABEL[cmd] ?? cmd;
    let code = "internal";
    let message = String(err);
    if (err instanceof CallbridgeError) {
      code = err.code;
      message = err.message;
    }
    let text = `${label} failed: ${message} (${code})`;
    if (err instanceof CommandError && code === "invalid" && /unknown (cmd|command)/.test(message)) {
      text = `${label} is not supported by this callbridge server: ${message} (${code})`;
    } else if (err instanceof CommandError && code === "not_supported") {
      text = `${label} is not possible here: ${message} (${code})`;
    }
    this.#error = text;
    this.#fire("callbridge:error", { command: cmd, code, message });
  }
  #pick(...states) {
    const calls = [...this.#desk?.calls.values() ?? []];
    for (const st of states) {
      const c = calls.find((c2) => this.#desk?.myConnection(c2)?.state === st);
      if (c) return c.call_id;
    }
    return void 0;
  }
  #draft(key) {
    return this.#drafts.get(key) ?? "";
  }
  #input(e) {
    const t = e.target;
    const key = t.dataset?.key;
    if (key) this.#drafts.set(key, t.value);
  }
  #submit(e) {
    e.preventDefault();
    const form = e.target;
    if (form.dataset.form === "login") {
      const f = new FormData(form);
      const username = String(f.get("username") ?? "").trim();
      const password = String(f.get("password") ?? "");
      const tenant = String(f.get("tenant") ?? "").trim() || void 0;
      this.#error = "";
      this.#info = "Signing in…";
      this.#render();
      this.login(username, password, tenant).then(
        () => {
          this.#info = "";
          this.#drafts.delete("password");
          this.#render();
        },
        (err) => {
          this.#info = "";
          this.#error = err instanceof CallbridgeError ? `Sign in failed: ${err.message}` : `Sign in failed: ${String(err)}`;
          this.#render();
        }
      );
    } else if (form.dataset.form === "dial") {
      const to = this.#draft("dial").trim();
      if (!to) return;
      this.dial(to).then(
        () => {
          this.#drafts.set("dial", "");
          this.#render();
        },
        () => {
        }
      );
    }
  }
  #click(e) {
    const btn = e.target.closest("button[data-action]");
    if (!btn || btn.disabled) return;
    const act = btn.dataset.action;
    const id = btn.dataset.call ?? "";
    const client = this.#client;
    const ignore = () => {
    };
    switch (act) {
      case "signout":
        this.logout();
        return;
      case "ready":
        this.setAgentState("ready").catch(ignore);
        return;
      case "not-ready":
        this.setAgentState("not_ready", this.#draft("reason") || this.#desk?.reasonCodes[0] || void 0).catch(ignore);
        return;
      case "log-off":
        this.setAgentState("logged_out").catch(ignore);
        return;
      case "retry":
        client?.reconnect();
        return;
    }
    if (!client) return;
    const note = this.#draft("note:" + id).trim();
    const to = this.#draft("to:" + id).trim();
    const data = note ? { [TRANSFER_NOTE_KEY]: note } : void 0;
    switch (act) {
      case "answer":
        this.answer(id).catch(ignore);
        break;
      case "hangup":
        this.hangUp(id).catch(ignore);
        break;
      case "hold":
        this.#run("hold_call", id, () => client.holdCall(id)).catch(ignore);
        break;
      case "retrieve":
        this.#run("retrieve_call", id, () => client.retrieveCall(id)).catch(ignore);
        break;
      case "blind":
        if (!to) return this.#needTarget();
        this.#run("single_step_transfer", id, () => client.singleStepTransfer(id, to, data)).then(() => this.#clearDrafts(id), ignore);
        break;
      case "consult":
        if (!to) return this.#needTarget();
        this.#run("consultation_call", id, () => client.consultationCall(id, to, data)).then((r) => {
          this.#consults.set(r.call_id, id);
          this.#render();
        }, ignore);
        break;
      case "complete": {
        const orig = btn.dataset.orig;
        const travel = this.#desk?.calls.get(id)?.attached_data?.[TRANSFER_NOTE_KEY];
        this.#run("transfer_call", orig, async () => {
          if (travel) await client.updateCallData(orig, { [TRANSFER_NOTE_KEY]: travel });
          return client.transferCall(orig, id);
        }).then(() => this.#clearDrafts(orig), ignore);
        break;
      }
      case "conference":
        this.#run("conference_call", btn.dataset.orig, () => client.conferenceCall(btn.dataset.orig, id)).catch(ignore);
        break;
      case "save-disposition": {
        const w = this.#wrapups.get(id);
        if (!w) return;
        const disposition = this.#draft("disp:" + id) || this.#dispositions()[0];
        const notes = this.#draft("notes:" + id).trim();
        w.saving = true;
        w.error = void 0;
        this.#run("set_disposition", id, () => client.setDisposition(id, disposition, notes || void 0)).then(
          () => {
            w.saving = false;
            if (this.#wrapups.delete(id)) this.#info = `Disposition saved: ${humanize(disposition)}.`;
            this.#saveState();
            this.#render();
          },
          () => {
            w.saving = false;
            w.error = this.#error;
            this.#saveState();
            this.#render();
          }
        );
        break;
      }
      case "dismiss":
        this.#wrapups.delete(id);
        this.#saveState();
        this.#render();
        break;
    }
  }
  #needTarget() {
    this.#error = "Enter a transfer target (agent, extension, queue or number).";
    this.#render();
  }
  #clearDrafts(id) {
    this.#drafts.delete("to:" + id);
    this.#drafts.delete("note:" + id);
    this.#render();
  }
  #dispositions() {
    const a = (this.getAttribute("dispositions") || "").split(",").map((s) => s.trim()).filter(Boolean);
    return a.length ? a : DEFAULT_DISPOSITIONS;
  }
  // ---- rendering ----
  #updateTimers() {
    for (const el of this.#root.querySelectorAll("[data-since]")) el.textContent = since(el.dataset.since);
    for (const el of this.#root.querySelectorAll("[data-until]")) {
      const left = Math.max(0, Math.ceil((new Date(el.dataset.until).getTime() - Date.now()) / 1e3));
      el.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    }
  }
  #render() {
    if (!this.isConnected) return;
    const active = this.#root.activeElement;
    const focusKey = active?.dataset?.key ?? active?.dataset?.action;
    let sel = [null, null];
    try {
      sel = [active?.selectionStart ?? null, active?.selectionEnd ?? null];
    } catch {
    }
    const bar = h("div", { class: "bar", part: "bar" });
    if (!this.#session) bar.append(this.#loginView());
    else bar.append(this.#deskView());
    bar.append(h("p", { class: "info muted", role: "status", text: this.#info }));
    bar.append(h("p", { class: "error", role: "alert", part: "error", text: this.#error }));
    const drawn = this.#root.firstElementChild;
    if (drawn) morphdom_esm_default(drawn, bar, { getNodeKey: nodeKey });
    else this.#root.replaceChildren(bar);
    if (focusKey) {
      const el = this.#root.querySelector(`[data-key="${CSS.escape(focusKey)}"], [data-action="${CSS.escape(focusKey)}"]`);
      if (el) {
        el.focus();
        try {
          if (sel[0] !== null) el.setSelectionRange(sel[0], sel[1]);
        } catch {
        }
      }
    }
    this.#updateTimers();
  }
  #loginView() {
    const f = h(
      "form",
      { class: "login", "data-form": "login", part: "login" },
      h("span", { class: "brand", part: "brand", text: "callbridge" }),
      h("label", {}, "User name", h("input", { name: "username", autocomplete: "username", required: true, "data-key": "username" })),
      h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true, "data-key": "password" })),
      h("label", {}, "Tenant", h("input", { name: "tenant", placeholder: "only if asked", "data-key": "tenant" })),
      h("button", { type: "submit", class: "primary", "data-action": "login", text: "Sign in" })
    );
    for (const k of ["username", "password", "tenant"]) {
      const inp = f.querySelector(`[data-key="${k}"]`);
      inp.value = this.#draft(k);
    }
    return f;
  }
  #deskView() {
    const frag = document.createDocumentFragment();
    const desk = this.#desk;
    const a = desk.agent;
    const link = this.#link?.status ?? "connecting";
    const connected = link === "open";
    const linkText = link === "open" ? "Connected" : link === "reconnecting" ? `Reconnecting${this.#link?.retryInMs !== void 0 ? ` in ${Math.ceil(this.#link.retryInMs / 1e3)} s` : ""}…` : link === "closed" ? "Disconnected" : "Connecting…";
    const state = a?.state ?? "";
    const pill = h(
      "span",
      { class: "pill " + state, part: "state", "data-state": state },
      STATE_LABEL[state] ?? (state || "…")
    );
    if (state === "not_ready" && a?.reason) pill.append(" — " + humanize(a.reason));
    if (state === "working_after_call" && a?.wrap_up_until) pill.append(" ", h("span", { "data-until": a.wrap_up_until }));
    if (a?.next_state && a.next_state !== state) {
      const next = (STATE_LABEL[a.next_state] ?? a.next_state) + (a.next_reason ? " — " + humanize(a.next_reason) : "");
      pill.append(" ", h("span", { class: "next", "data-next": a.next_state, text: "then " + next }));
    }
    const reasons = h("select", { "data-key": "reason", "aria-label": "Not ready reason", part: "reason" });
    const reason = desk.reasonCodes.includes(this.#draft("reason")) ? this.#draft("reason") : desk.reasonCodes[0];
    for (const r of desk.reasonCodes) reasons.append(h("option", { value: r, text: humanize(r), selected: r === reason }));
    reasons.hidden = desk.reasonCodes.length === 0;
    const who = a?.name ? `${a.name} (${this.#session.username})` : this.#session.username;
    frag.append(h(
      "div",
      { class: "row" },
      h("span", { class: "brand", part: "brand", text: "callbridge" }),
      h("span", { class: "dot " + link, title: linkText, part: "link", "data-link": link }),
      h("span", { class: "muted small", part: "link-text", "data-role": "link", text: linkText }),
      link === "reconnecting" ? h("button", { type: "button", "data-action": "retry", text: "Retry now" }) : null,
      h("span", { class: "who-am-i", text: who + (a?.device ? ` · ext ${a.device}` : "") }),
      pill,
      h("span", { class: "grow" }),
      h("button", { type: "button", class: state === "ready" || state === "busy" ? "" : "ok", "data-action": "ready", text: "Ready", disabled: !connected || state === "ready" || this.#busy.has("set_agent_state:") }),
      reasons,
      h("button", { type: "button", "data-action": "not-ready", text: "Not ready", disabled: !connected || this.#busy.has("set_agent_state:") }),
      h("button", { type: "button", "data-action": "log-off", text: "Log off", title: "Log off the queues", disabled: !connected || state === "logged_out" }),
      h("button", { type: "button", "data-action": "signout", text: "Sign out", title: "End this web session" })
    ));
    const dialInput = h("input", { class: "dial", "data-key": "dial", placeholder: "Number, extension or agent", "aria-label": "Number to call", inputmode: "tel", part: "dial" });
    dialInput.value = this.#draft("dial");
    frag.append(h(
      "form",
      { class: "row", "data-form": "dial" },
      dialInput,
      h("button", { type: "submit", class: "primary", "data-action": "dial", text: "Call", disabled: !connected || this.#busy.has("make_call:") })
    ));
    const cards = h("div", { class: "cards" });
    for (const c of desk.calls.values()) cards.append(this.#callCard(c, connected));
    for (const w of this.#wrapups.values()) cards.append(this.#wrapCard(w, connected));
    if (cards.childElementCount === 0) cards.append(h("p", { class: "muted small no-calls", text: state === "ready" ? "Waiting for a call…" : "No calls." }));
    frag.append(cards);
    return frag;
  }
  #callCard(c, connected) {
    const desk = this.#desk;
    const cn = desk.myConnection(c);
    const st = cn?.state ?? "";
    const id = c.call_id;
    const orig = c.consult_of && desk.calls.has(c.consult_of) ? c.consult_of : this.#consults.get(id);
    const isMyConsult = !!orig && desk.calls.has(orig);
    const card = h("div", { class: "card call " + st, "data-call": id, "data-state": st, part: "call" });
    const ani = c.ani || "unknown number";
    const dir = c.direction === "inbound" ? "Inbound" : c.direction === "outbound" ? "Outbound" : "Internal";
    card.append(h(
      "h3",
      {},
      h("span", { class: "badge " + st, "data-role": "state", text: CONN_LABEL[st] ?? st }),
      h("span", { class: "who", "data-role": "ani", text: c.direction === "outbound" && c.dnis ? c.dnis : ani }),
      c.ani_name ? h("span", { "data-role": "ani-name", text: c.ani_name }) : null,
      h("span", { class: "muted", text: isMyConsult ? "Consultation" : dir }),
      h("span", { class: "muted", "data-since": c.answered_at || c.started_at })
    ));
    const facts = h("div", { class: "facts small" });
    const fact = (label, v, role) => {
      if (v) facts.append(h("span", { "data-role": role }, label + " ", h("b", { text: v })));
    };
    fact("Caller", ani, "caller");
    fact("Dialed", c.dnis, "dnis");
    fact("Queue", c.queue, "queue");
    card.append(facts);
    const data = c.attached_data ?? {};
    const note = data[TRANSFER_NOTE_KEY];
    if (note) card.append(h("div", { class: "note", "data-role": "transfer-note", part: "note" }, h("b", { text: "Note: " }), note));
    const keys = Object.keys(data).filter((k) => k !== TRANSFER_NOTE_KEY).sort();
    if (keys.length) {
      const dl = h("dl", { class: "data", "data-role": "attached-data", part: "attached-data" });
      for (const k of keys) dl.append(h("dt", { text: humanize(k), title: k }), h("dd", { "data-key-name": k, text: data[k] }));
      card.append(dl);
    }
    const busy = (cmd) => this.#busy.has(cmd + ":" + id);
    const btn = (action, label, enabled, cls = "", extra = {}) => h("button", { type: "button", class: cls, "data-action": action, "data-call": id, text: label, disabled: !connected || !enabled, ...extra });
    const row = h(
      "div",
      { class: "row" },
      btn("answer", "Answer", st === "alerting" && !busy("answer_call"), "primary"),
      st === "held" ? btn("retrieve", "Retrieve", !busy("retrieve_call")) : btn("hold", "Hold", st === "connected" && !busy("hold_call")),
      btn("hangup", isMyConsult ? "Cancel consultation" : "Hang up", isActive(cn?.state) && !busy("clear_connection"), "danger")
    );
    if (isMyConsult) {
      row.append(
        btn("complete", "Complete transfer", st === "connected" && !this.#busy.has("transfer_call:" + orig), "primary", { "data-orig": orig }),
        btn("conference", "Conference", st === "connected" && !this.#busy.has("conference_call:" + orig), "", { "data-orig": orig })
      );
    }
    const tpl = this.getAttribute("screen-pop");
    if (tpl && !isMyConsult) row.append(h("a", { href: fillTemplate(tpl, c), target: this.getAttribute("screen-pop-target") || "callbridge-pop", rel: "noopener", "data-role": "crm-link", text: "Open in CRM" }));
    card.append(row);
    const consulting = [...desk.calls.values()].some((o) => o.consult_of === id);
    if ((st === "connected" || st === "held") && !isMyConsult && !consulting) {
      const to = h("input", { class: "to", "data-key": "to:" + id, placeholder: "Transfer to", "aria-label": "Transfer target" });
      to.value = this.#draft("to:" + id);
      const tnote = h("input", { class: "tnote", "data-key": "note:" + id, placeholder: "Note for the receiver (travels with the call)", "aria-label": "Transfer note", maxlength: "1000" });
      tnote.value = this.#draft("note:" + id);
      card.append(h(
        "div",
        { class: "row transfer" },
        to,
        tnote,
        btn("blind", "Blind transfer", !busy("single_step_transfer")),
        btn("consult", "Consult", st === "connected" && !busy("consultation_call"))
      ));
    }
    return card;
  }
  #wrapCard(w, connected) {
    const id = w.call.call_id;
    const c = w.call;
    const sel = h("select", { "data-key": "disp:" + id, "aria-label": "Disposition" });
    const disp = this.#draft("disp:" + id) || this.#dispositions()[0];
    for (const d of this.#dispositions()) sel.append(h("option", { value: d, text: humanize(d), selected: d === disp }));
    const notes = h("textarea", { "data-key": "notes:" + id, placeholder: "Notes", "aria-label": "Wrap-up notes", maxlength: "1000" });
    notes.value = this.#draft("notes:" + id);
    const other = c.direction === "outbound" ? c.dnis || c.ani : c.ani;
    return h(
      "div",
      { class: "card wrapup", "data-wrapup": id, part: "wrapup" },
      h(
        "h3",
        {},
        h("span", { class: "badge", text: "Wrap-up" }),
        h("span", { class: "who", text: other || "call" }),
        c.queue ? h("span", { class: "muted", text: c.queue }) : null,
        h("span", { class: "muted", text: "ended " + clock(w.ended_at) })
      ),
      h("div", { class: "row" }, h("label", { class: "muted", text: "Disposition" }), sel),
      h("div", { class: "row" }, notes),
      w.error ? h("p", { class: "error", "data-role": "wrapup-error", text: w.error }) : null,
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", class: "primary", "data-action": "save-disposition", "data-call": id, text: w.saving ? "Saving…" : "Save", disabled: !connected || !!w.saving }),
        h("button", { type: "button", "data-action": "dismiss", "data-call": id, text: "Dismiss" })
      )
    );
  }
};
if (!customElements.get("callbridge-bar")) customElements.define("callbridge-bar", CallbridgeBar);
export {
  CallbridgeBar,
  DEFAULT_DISPOSITIONS,
  TRANSFER_NOTE_KEY,
  domEventName,
  fillTemplate,
  humanize,
  since
};
