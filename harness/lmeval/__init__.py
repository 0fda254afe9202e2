"""The lm-evaluation-harness glue: the task functions the taiyi_* YAMLs call (`tasks`), the model
wrappers that apply a prompt format (`models`), and the start-up hook that lets `lm_eval` find
both (`plugin`). It depends on the library, never on the applications."""
